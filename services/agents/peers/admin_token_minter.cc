#include "services/agents/peers/admin_token_minter.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "services/common/peers/mesh_call.h"
#include "services/common/status/status.h"
#include "spdlog/spdlog.h"

namespace orchestrator::agents {

AdminTokenMinter::AdminTokenMinter(std::function<StubPtr()> make_stub, MeshCredentialPtr mesh,
                                   std::chrono::milliseconds deadline)
    : make_stub_(std::move(make_stub)), mesh_(std::move(mesh)), deadline_(deadline) {}

AdminTokenMinter::~AdminTokenMinter() {
  // Revocations still queued are dropped (logged): Drain gave them their
  // time while the mesh could still be reached.
  stopping_ = true;
  revoker_.Shutdown();
}

admin::v1::AdminService::StubInterface& AdminTokenMinter::Stub() {
  absl::call_once(once_, [this] { stub_ = make_stub_(); });
  return *stub_;
}

absl::StatusOr<TokenMinter::Minted> AdminTokenMinter::Mint(const Principal& caller,
                                                           const std::string& worker_id,
                                                           const std::string& project_id,
                                                           const std::vector<std::string>& grants) {
  admin::v1::MintWorkerTokenRequest req;
  req.set_user_id(caller.user_id);
  // The mesh acting for a user has no token of its own to derive from.
  if (!IsMesh(caller)) req.set_parent_token_id(caller.token_id);
  req.set_worker_id(worker_id);
  req.set_project_id(project_id);
  for (const auto& g : grants) req.add_permissions(g);
  grpc::ClientContext ctx;
  PrepareMeshCall(ctx, *mesh_, deadline_);
  admin::v1::MintWorkerTokenResponse resp;
  grpc::Status status = Stub().MintWorkerToken(&ctx, req, &resp);
  if (!status.ok()) {
    absl::Status s = FromGrpcStatus(status);
    if (absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s)) {
      return absl::UnavailableError(absl::StrCat(
          "cannot mint the worker's token: AdminService (admin) is unavailable: ", s.message()));
    }
    return s;
  }
  return Minted{resp.token().id(), resp.value()};
}

void AdminTokenMinter::Revoke(const std::string& token_id) {
  if (token_id.empty()) return;
  {
    absl::MutexLock lock(&mu_);
    ++pending_;
  }
  absl::Status queued = revoker_.Submit([this, token_id] {
    RevokeWithRetries(token_id);
    absl::MutexLock lock(&mu_);
    --pending_;
  });
  if (!queued.ok()) {
    spdlog::warn("agents: token {} not revoked: {}", token_id, queued.ToString());
    absl::MutexLock lock(&mu_);
    --pending_;
  }
}

void AdminTokenMinter::WaitIdle(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return pending_ == 0; };
  mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
}

void AdminTokenMinter::RevokeWithRetries(const std::string& token_id) {
  if (stopping_) {
    // The server our in-process channel leads to may be gone: no call now.
    spdlog::warn("agents: token {} not revoked: the agents component stopped first", token_id);
    return;
  }
  auto backoff = std::chrono::milliseconds(100);
  for (int attempt = 1;; ++attempt) {
    admin::v1::RevokeWorkerTokenRequest req;
    req.set_token_id(token_id);
    grpc::ClientContext ctx;
    PrepareMeshCall(ctx, *mesh_, deadline_);
    admin::v1::RevokeWorkerTokenResponse resp;
    absl::Status s =
        FromPeerStatus(Stub().RevokeWorkerToken(&ctx, req, &resp), "AdminService (admin)");
    if (s.ok() || absl::IsNotFound(s)) return;
    const bool transient = absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s);
    if (!transient || attempt >= 12 || stopping_) {
      spdlog::warn("agents: token {} not revoked after {} attempts: {}", token_id, attempt,
                   s.ToString());
      return;
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(10000));
  }
}

}  // namespace orchestrator::agents
