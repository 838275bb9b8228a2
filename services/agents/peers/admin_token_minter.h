#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "absl/base/call_once.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "orchestrator/admin/v1/admin.grpc.pb.h"
#include "services/agents/domain/worker_spawner.h"
#include "services/common/auth/mesh_identity.h"
#include "services/common/executor/bounded_executor.h"

namespace orchestrator::agents {

// Workers' tokens from AdminService (MintWorkerToken / RevokeWorkerToken,
// mesh-only), through its stub as the mesh. A worker started by a user's
// token gets a token derived from it; one the mesh started for a user gets
// one within the user's role.
class AdminTokenMinter final : public TokenMinter {
 public:
  using StubPtr = std::unique_ptr<admin::v1::AdminService::StubInterface>;
  // `make_stub` runs once, at the first call (an in-process channel exists
  // only once the server serves).
  AdminTokenMinter(std::function<StubPtr()> make_stub, MeshCredentialPtr mesh,
                   std::chrono::milliseconds deadline);
  ~AdminTokenMinter() override;

  absl::StatusOr<Minted> Mint(const Principal& caller, const std::string& worker_id,
                              const std::string& project_id,
                              const std::vector<std::string>& grants) override;
  // Queued and retried (with backoff, for about a minute) while AdminService
  // cannot be reached; never blocks the caller.
  void Revoke(const std::string& token_id) override;

  // Waits (until `deadline` at most) for the revocations queued so far: a
  // shutdown revokes its workers' tokens while AdminService can still be
  // reached through this process.
  void WaitIdle(absl::Time deadline);

 private:
  admin::v1::AdminService::StubInterface& Stub();
  void RevokeWithRetries(const std::string& token_id);

  std::function<StubPtr()> make_stub_;
  const MeshCredentialPtr mesh_;
  const std::chrono::milliseconds deadline_;
  absl::once_flag once_;
  StubPtr stub_;
  std::atomic<bool> stopping_{false};
  absl::Mutex mu_;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;  // revocations queued or running
  BoundedExecutor revoker_{1, 4096};
};

}  // namespace orchestrator::agents
