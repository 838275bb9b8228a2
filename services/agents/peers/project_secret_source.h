#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "absl/base/call_once.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "services/agents/domain/worker_spawner.h"
#include "services/common/auth/mesh_identity.h"

namespace orchestrator::agents {

// Project secrets granted to a worker by name, from ProjectService
// (RevealSecrets, mesh-only), and the project's repository URL
// (GetProject), through its stub, as the mesh acting for the worker's
// user: another owner's project is NOT_FOUND.
class ProjectSecretSource final : public SecretSource {
 public:
  using StubPtr = std::unique_ptr<projects::v1::ProjectService::StubInterface>;
  ProjectSecretSource(std::function<StubPtr()> make_stub, MeshCredentialPtr mesh,
                      std::chrono::milliseconds deadline)
      : make_stub_(std::move(make_stub)), mesh_(std::move(mesh)), deadline_(deadline) {}

  absl::StatusOr<std::string> Reveal(const Principal& caller, const std::string& project_id,
                                     const std::string& name) override;
  absl::StatusOr<std::string> RepositoryOf(const Principal& caller,
                                           const std::string& project_id) override;

 private:
  std::function<StubPtr()> make_stub_;
  const MeshCredentialPtr mesh_;
  const std::chrono::milliseconds deadline_;
  absl::once_flag once_;
  StubPtr stub_;
};

}  // namespace orchestrator::agents
