#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "orchestrator/deploy/v1/deploy.pb.h"
#include "services/common/pagination/page_token.h"

namespace orchestrator::deploy {

// Persistence of releases. NOT_FOUND for a missing release; knows nothing
// of callers.
class ReleaseStore {
 public:
  virtual ~ReleaseStore() = default;

  // This installation's id, made at its first start: what its containers
  // and images are labelled with.
  virtual absl::StatusOr<std::string> InstallationId() = 0;

  // The release job `release.job_id()` made, made now when it has none
  // (DEPLOYING, the project's next version): a re-run finds its own.
  virtual absl::StatusOr<v1::Release> EnsureForJob(const v1::Release& release) = 0;
  virtual absl::StatusOr<v1::Release> Get(const std::string& release_id) = 0;
  virtual absl::StatusOr<std::optional<v1::Release>> Live(const std::string& project_id) = 0;
  // Every LIVE release (the routes the front door must have).
  virtual absl::StatusOr<std::vector<v1::Release>> AllLive() = 0;
  // Newest first; `status` 0 = any.
  virtual absl::StatusOr<Page<v1::Release>> List(const std::string& project_id,
                                                 v1::ReleaseStatus status,
                                                 const PageRequest& page) = 0;
  // What the job's release runs on (while DEPLOYING): its image,
  // container_name, port, server_id and health_path.
  virtual absl::Status SetRuntime(const v1::Release& release) = 0;
  // In one transaction: the project's LIVE release (if another) becomes
  // SUPERSEDED, this one LIVE at `url`. Returns the one superseded.
  virtual absl::StatusOr<std::optional<v1::Release>> MakeLive(const std::string& release_id,
                                                              const std::string& url,
                                                              absl::Time now) = 0;
  // A LIVE release found unhealthy after its switch: `reason` recorded as
  // its failure_reason (its status is left to the rollback).
  virtual absl::Status RecordUnhealthy(const std::string& release_id,
                                       const std::string& reason) = 0;
  // One health probe of a LIVE release after its switch: the failed
  // probes in a row now (0 after one that passed).
  virtual absl::StatusOr<int> RecordProbe(const std::string& release_id, bool passed) = 0;
  // DEPLOYING → FAILED with `reason` (a LIVE release is left alone).
  virtual absl::Status MarkFailed(const std::string& release_id, const std::string& reason) = 0;
  // The project's DEPLOYING releases other than `except` → FAILED with
  // `reason`: one deploy runs per project at a time, so theirs ended (a
  // cancelled job, retries used up) before they went live.
  virtual absl::Status FailAbandoned(const std::string& project_id, const std::string& except,
                                     const std::string& reason) = 0;
};

using ReleaseStorePtr = std::shared_ptr<ReleaseStore>;

}  // namespace orchestrator::deploy
