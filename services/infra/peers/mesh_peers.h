#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "orchestrator/deploy/v1/deploy.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "services/common/auth/mesh_identity.h"
#include "services/common/peers/lazy_stub.h"
#include "services/infra/domain/diagnostics_ports.h"

namespace orchestrator::infra {

// ReleaseDirectory over DeployService's stub, as the mesh acting for the
// project's owner.
class DeployServiceReleases final : public ReleaseDirectory {
 public:
  DeployServiceReleases(std::function<LazyStub<deploy::v1::DeployService>::StubPtr()> make,
                        MeshCredentialPtr mesh, std::chrono::milliseconds deadline)
      : stub_(std::move(make)), mesh_(std::move(mesh)), deadline_(deadline) {}

  absl::StatusOr<std::optional<deploy::v1::Release>> Live(const std::string& owner_id,
                                                          const std::string& project_id) override;
  absl::StatusOr<std::vector<deploy::v1::Release>> Latest(const std::string& owner_id,
                                                          const std::string& project_id,
                                                          int limit) override;

 private:
  absl::StatusOr<deploy::v1::ListReleasesResponse> List(
      const std::string& owner_id, const deploy::v1::ListReleasesRequest& request);

  LazyStub<deploy::v1::DeployService> stub_;
  MeshCredentialPtr mesh_;
  std::chrono::milliseconds deadline_;
};

// SecretValues over ProjectService's stub (ListSecrets, then the mesh-only
// RevealSecrets), as the mesh acting for the project's owner.
class ProjectServiceSecrets final : public SecretValues {
 public:
  ProjectServiceSecrets(std::function<LazyStub<projects::v1::ProjectService>::StubPtr()> make,
                        MeshCredentialPtr mesh, std::chrono::milliseconds deadline)
      : stub_(std::move(make)), mesh_(std::move(mesh)), deadline_(deadline) {}

  absl::StatusOr<std::vector<std::string>> Values(const std::string& owner_id,
                                                  const std::string& project_id) override;

 private:
  absl::StatusOr<std::vector<std::string>> ListAndReveal(const std::string& owner_id,
                                                         const std::string& project_id);

  LazyStub<projects::v1::ProjectService> stub_;
  MeshCredentialPtr mesh_;
  std::chrono::milliseconds deadline_;
};

// ProjectRegistry over ProjectService's stub, as the mesh acting for the
// project's owner.
class ProjectServiceRegistry final : public ProjectRegistry {
 public:
  ProjectServiceRegistry(std::function<LazyStub<projects::v1::ProjectService>::StubPtr()> make,
                         MeshCredentialPtr mesh, std::chrono::milliseconds deadline)
      : stub_(std::move(make)), mesh_(std::move(mesh)), deadline_(deadline) {}

  absl::StatusOr<bool> Exists(const std::string& owner_id, const std::string& project_id) override;

 private:
  LazyStub<projects::v1::ProjectService> stub_;
  MeshCredentialPtr mesh_;
  std::chrono::milliseconds deadline_;
};

}  // namespace orchestrator::infra
