#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "orchestrator/sessions/v1/sessions.grpc.pb.h"
#include "services/common/auth/mesh_identity.h"
#include "services/common/peers/lazy_stub.h"
#include "services/jobs/domain/project_history.h"

namespace orchestrator::jobs {

// The session messages a history shows, read from SessionService as the
// mesh (LookupMessages).
class SessionMessagesOverStub final : public SessionMessages {
 public:
  using StubFactory = std::function<std::unique_ptr<sessions::v1::SessionService::StubInterface>()>;
  SessionMessagesOverStub(StubFactory make_stub, MeshCredentialPtr mesh,
                          std::chrono::milliseconds deadline)
      : stub_(std::move(make_stub)), mesh_(std::move(mesh)), deadline_(deadline) {}

  absl::StatusOr<std::vector<sessions::v1::SessionMessage>> Lookup(
      const std::string& owner_id, const std::vector<std::string>& ids) override;

 private:
  LazyStub<sessions::v1::SessionService> stub_;
  MeshCredentialPtr mesh_;
  std::chrono::milliseconds deadline_;
};

}  // namespace orchestrator::jobs
