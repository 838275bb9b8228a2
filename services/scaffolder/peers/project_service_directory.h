#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "absl/base/call_once.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "services/common/auth/mesh_identity.h"
#include "services/scaffolder/domain/scaffold_run.h"

namespace orchestrator::scaffolder {

// ProjectDirectory over ProjectService's stub, as the mesh acting for the
// project's owner (so ProjectService scopes every call to that owner).
class ProjectServiceDirectory final : public ProjectDirectory {
 public:
  using StubPtr = std::unique_ptr<projects::v1::ProjectService::StubInterface>;
  // `make_stub` runs at the first call: an in-process channel exists only
  // once the server serves.
  ProjectServiceDirectory(std::function<StubPtr()> make_stub, MeshCredentialPtr mesh,
                          std::chrono::milliseconds deadline)
      : make_stub_(std::move(make_stub)), mesh_(std::move(mesh)), deadline_(deadline) {}

  absl::StatusOr<projects::v1::Project> Get(const std::string& owner_id,
                                            const std::string& project_id) override;
  absl::Status Record(const std::string& owner_id, const projects::v1::Project& outcome) override;
  absl::Status StoreSecret(const std::string& owner_id, const std::string& project_id,
                           const std::string& name, const std::string& value) override;

 private:
  projects::v1::ProjectService::StubInterface& Stub();

  std::function<StubPtr()> make_stub_;
  MeshCredentialPtr mesh_;
  std::chrono::milliseconds deadline_;
  absl::once_flag once_;
  StubPtr stub_;
};

}  // namespace orchestrator::scaffolder
