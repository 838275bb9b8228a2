#pragma once

#include <chrono>
#include <functional>

#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "services/common/auth/mesh_identity.h"
#include "services/common/peers/lazy_stub.h"
#include "services/engineering/domain/ports.h"

namespace orchestrator::engineering {

// ProjectDirectory over ProjectService's stub, as the mesh acting for the
// project's owner.
class ProjectServiceDirectory final : public ProjectDirectory {
 public:
  ProjectServiceDirectory(std::function<LazyStub<projects::v1::ProjectService>::StubPtr()> make,
                          MeshCredentialPtr mesh, std::chrono::milliseconds deadline)
      : stub_(std::move(make)), mesh_(std::move(mesh)), deadline_(deadline) {}

  absl::StatusOr<projects::v1::Project> Get(const std::string& owner_id,
                                            const std::string& project_id) override;

 private:
  LazyStub<projects::v1::ProjectService> stub_;
  MeshCredentialPtr mesh_;
  std::chrono::milliseconds deadline_;
};

}  // namespace orchestrator::engineering
