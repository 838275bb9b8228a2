#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "orchestrator/infra/v1/infra.pb.h"
#include "services/common/containers/container_engine.h"
#include "services/infra/domain/diagnostics_ports.h"

namespace orchestrator::infra {

struct DiagnosticsOptions {
  // The service a project's release runs (the one there is, for now).
  std::string service = "web";
  // Lines sent first when a request names no tail_lines.
  int default_tail_lines = 100;
  // A follow ends after this long; the caller may follow again.
  absl::Duration max_follow = absl::Hours(1);
  // Lines per message of the past lines a stream sends first.
  int lines_per_message = 500;
  // What a health probe through the route may take.
  absl::Duration probe_timeout = absl::Seconds(5);
  // Memory use past this share of the container's limit fails its check.
  double memory_warning_share = 0.9;
  // The error history reads at most this many of each container's last
  // lines, and looks at most this many of the project's latest releases.
  int max_scanned_lines = 10000;
  int max_releases = 100;
};

// Diagnoses a project's deployed service: its logs, its health now, the
// errors it had. The caller is already known to see the project, and
// `owner_id` is its owner, for whom the peers are asked. Everything it
// sends has the project's secret values redacted.
class ServiceDiagnostics {
 public:
  // Takes the next message of a log stream; false when the caller is gone
  // (the stream then ends).
  using LogSink = std::function<bool(v1::GetServiceLogsResponse)>;

  ServiceDiagnostics(std::shared_ptr<ReleaseDirectory> releases,
                     std::shared_ptr<SecretValues> secrets, std::shared_ptr<ReleaseSites> sites,
                     DiagnosticsOptions options)
      : releases_(std::move(releases)),
        secrets_(std::move(secrets)),
        sites_(std::move(sites)),
        options_(std::move(options)) {}

  // The live release's container output: the last tail_lines lines (at or
  // after since_time, to the second), then with follow the new lines as they
  // are written, until the container stops (a deploy or rollback that
  // replaces it stops it; one its restart policy restarts is followed on),
  // options.max_follow has passed (OK), or `cancel` turns true (CANCELLED).
  // FAILED_PRECONDITION when nothing is deployed; NOT_FOUND for a service
  // the project does not have; ABORTED when the container went away before
  // anything was read (a new release replaced it: ask again).
  absl::Status StreamLogs(const std::string& owner_id, const v1::GetServiceLogsRequest& request,
                          const LogSink& send, const std::atomic<bool>* cancel);

  // Probes the live release now: through the route (as its users reach
  // it), its container's state, restarts and memory. NOT_DEPLOYED without
  // a live release; UNHEALTHY when the route does not serve; DEGRADED when
  // it serves but another check failed; HEALTHY when every check passed.
  absl::StatusOr<v1::CheckServiceHealthResponse> CheckHealth(const std::string& owner_id,
                                                             const std::string& project_id);

  // The errors seen in the window (since_time): error lines and tracebacks
  // in the output of the project's containers, their crashes (restarts,
  // exits with a failure, the kernel's out-of-memory kills) and the
  // releases whose deploy failed or that the platform rolled back, grouped
  // by kind and normalised message, most recently seen first, a page at a
  // time. Output goes with a container: a release's errors stay while its
  // container does.
  absl::StatusOr<v1::GetErrorHistoryResponse> ErrorHistory(
      const std::string& owner_id, const v1::GetErrorHistoryRequest& request);

 private:
  std::shared_ptr<ReleaseDirectory> releases_;
  std::shared_ptr<SecretValues> secrets_;
  std::shared_ptr<ReleaseSites> sites_;  // each release read on its server
  DiagnosticsOptions options_;
};

}  // namespace orchestrator::infra
