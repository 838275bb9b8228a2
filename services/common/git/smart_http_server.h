#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/executor/bounded_executor.h"
#include "services/common/http/http_server.h"

namespace orchestrator::git {

struct GitSmartHttpLimits {
  // Pushes carry packs: bodies far larger than the gateway's.
  http::HttpLimits http = {.max_body_bytes = size_t{256} << 20,
                           .read_timeout = std::chrono::minutes(5)};
  int io_threads = 2;
  // `git http-backend` processes at once; more get 503.
  int max_backends = 32;
  // Each backend is killed after this.
  absl::Duration backend_timeout = absl::Minutes(10);
};

// Serves the bare repositories under a LocalGitHost's root over git smart
// HTTP at /git/<name>.git/... by running `git http-backend` as a CGI, plus
// /healthz. Only info/refs?service=git-upload-pack|git-receive-pack,
// git-upload-pack and git-receive-pack exist; everything else is 404, and
// a bad name is refused before any process runs.
//
// Credentials: "Authorization: Basic base64(user:TOKEN)" (what git sends
// from a credential helper or a URL) or "Authorization: Bearer TOKEN"; none
// is 401 with a Basic challenge. `Authorize` decides (write = receive-pack):
// OK serves; UNAUTHENTICATED 401; NOT_FOUND and PERMISSION_DENIED 404 (no
// one learns that another's repository exists); FAILED_PRECONDITION 403
// with its message (a caller who sees the repository but may not do this,
// e.g. an agent pushing); UNAVAILABLE 503; anything else 500. One log line per request, never with
// its credentials.
class GitSmartHttpServer final {
 public:
  // Calls `done` exactly once, from any thread.
  using Authorize =
      std::function<void(const std::string& repository_name, const std::string& bearer_token,
                         bool write, std::function<void(absl::Status)> done)>;

  GitSmartHttpServer(std::string root, std::string listen_address, Authorize authorize,
                     GitSmartHttpLimits limits = {});
  ~GitSmartHttpServer();  // Stop()s

  GitSmartHttpServer(const GitSmartHttpServer&) = delete;
  GitSmartHttpServer& operator=(const GitSmartHttpServer&) = delete;

  // Binds the listen address (port 0 picks one) and serves; the bound port.
  absl::StatusOr<int> Start();

  // Kills the backends still running, waits for authorizations in flight to
  // answer, and stops serving. Idempotent.
  void Stop();

  // How many `git http-backend` processes were started (what tests watch).
  int64_t backends_started() const { return backends_started_.load(); }

 private:
  struct Backend;
  struct Request;

  void Handle(http::HttpRequest request, std::shared_ptr<http::Exchange> exchange);
  void Authorized(std::shared_ptr<Request> request, absl::Status status);
  void RunBackend(std::shared_ptr<Request> request, std::shared_ptr<Backend> backend);
  // Waits until the exchange wrote a chunk; false when it never will.
  bool AwaitWritten(Backend& backend);

  const std::string root_;
  const std::string listen_address_;
  const Authorize authorize_;
  const GitSmartHttpLimits limits_;
  std::unique_ptr<http::HttpServer> server_;
  std::unique_ptr<BoundedExecutor> backends_;
  std::atomic<int64_t> backends_started_{0};

  // Guards what Stop waits for (authorizations in flight, running
  // backends), whether it stopped, and each backend's chunk in flight.
  absl::Mutex mu_;
  int authorizing_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::shared_ptr<Backend>> running_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace orchestrator::git
