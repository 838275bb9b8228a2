#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "orchestrator/infra/v1/infra.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "services/common/auth/mesh_identity.h"
#include "services/common/peers/lazy_stub.h"
#include "services/deploy/domain/deploy_ports.h"

namespace orchestrator::deploy {

// ProjectDirectory over ProjectService's stub, as the mesh acting for the
// project's owner.
class ProjectServiceDirectory final : public ProjectDirectory {
 public:
  ProjectServiceDirectory(std::function<LazyStub<projects::v1::ProjectService>::StubPtr()> make,
                          MeshCredentialPtr mesh, std::chrono::milliseconds deadline)
      : stub_(std::move(make)), mesh_(std::move(mesh)), deadline_(deadline) {}

  absl::StatusOr<projects::v1::Project> Get(const std::string& owner_id,
                                            const std::string& project_id) override;
  absl::StatusOr<std::vector<std::string>> SecretNames(const std::string& owner_id,
                                                       const std::string& project_id) override;
  absl::StatusOr<std::map<std::string, std::string>> RevealSecrets(
      const std::string& owner_id, const std::string& project_id,
      const std::vector<std::string>& names) override;

 private:
  LazyStub<projects::v1::ProjectService> stub_;
  MeshCredentialPtr mesh_;
  std::chrono::milliseconds deadline_;
};

// PortAllocations over InfraService's stub, as the mesh acting for the
// project's owner: services "web" (routed) and "web-next"; and the access
// to the servers they are on.
class InfraPortAllocations final : public PortAllocations {
 public:
  InfraPortAllocations(std::function<LazyStub<infra::v1::InfraService>::StubPtr()> make,
                       MeshCredentialPtr mesh, std::chrono::milliseconds deadline)
      : stub_(std::move(make)), mesh_(std::move(mesh)), deadline_(deadline) {}

  absl::StatusOr<PortSlots> Slots(const std::string& owner_id, const std::string& project_id,
                                  const std::string& server_id) override;

  // How to reach a server's engine and router (InfraService's mesh-only
  // GetServerAccess), acting for `owner_id`.
  absl::StatusOr<infra::v1::GetServerAccessResponse> ServerAccess(const std::string& owner_id,
                                                                  const std::string& server_id);

 private:
  absl::StatusOr<infra::v1::Allocation> Allocate(const std::string& owner_id,
                                                 const std::string& project_id,
                                                 const std::string& service,
                                                 const std::string& server_id);

  LazyStub<infra::v1::InfraService> stub_;
  MeshCredentialPtr mesh_;
  std::chrono::milliseconds deadline_;
};

}  // namespace orchestrator::deploy
