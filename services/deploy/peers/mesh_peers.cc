#include "services/deploy/peers/mesh_peers.h"

#include "services/common/peers/mesh_call.h"
#include "services/common/peers/project_secrets.h"
#include "services/common/status/status.h"

namespace orchestrator::deploy {
namespace {
constexpr absl::string_view kInfraService = "the infra component";
}  // namespace

absl::StatusOr<projects::v1::Project> ProjectServiceDirectory::Get(const std::string& owner_id,
                                                                   const std::string& project_id) {
  return GetProjectAs(*stub_, *mesh_, deadline_, owner_id, project_id);
}

absl::StatusOr<std::vector<std::string>> ProjectServiceDirectory::SecretNames(
    const std::string& owner_id, const std::string& project_id) {
  return ListSecretNames(*stub_, *mesh_, deadline_, owner_id, project_id);
}

absl::StatusOr<std::map<std::string, std::string>> ProjectServiceDirectory::RevealSecrets(
    const std::string& owner_id, const std::string& project_id,
    const std::vector<std::string>& names) {
  return RevealSecretValues(*stub_, *mesh_, deadline_, owner_id, project_id, names);
}

absl::StatusOr<infra::v1::Allocation> InfraPortAllocations::Allocate(const std::string& owner_id,
                                                                     const std::string& project_id,
                                                                     const std::string& service,
                                                                     const std::string& server_id) {
  grpc::ClientContext ctx;
  PrepareMeshCall(ctx, *mesh_, deadline_, owner_id);
  infra::v1::AllocatePortRequest req;
  req.set_project_id(project_id);
  req.set_service(service);
  req.set_server_id(server_id);
  infra::v1::AllocatePortResponse resp;
  if (grpc::Status s = (*stub_).AllocatePort(&ctx, req, &resp); !s.ok()) {
    return FromPeerStatus(s, kInfraService);
  }
  return std::move(*resp.mutable_allocation());
}

absl::StatusOr<infra::v1::GetServerAccessResponse> InfraPortAllocations::ServerAccess(
    const std::string& owner_id, const std::string& server_id) {
  grpc::ClientContext ctx;
  PrepareMeshCall(ctx, *mesh_, deadline_, owner_id);
  infra::v1::GetServerAccessRequest req;
  req.set_server_id(server_id);
  infra::v1::GetServerAccessResponse resp;
  if (grpc::Status s = (*stub_).GetServerAccess(&ctx, req, &resp); !s.ok()) {
    return FromPeerStatus(s, kInfraService);
  }
  return resp;
}

absl::StatusOr<PortSlots> InfraPortAllocations::Slots(const std::string& owner_id,
                                                      const std::string& project_id,
                                                      const std::string& server_id) {
  auto live = Allocate(owner_id, project_id, "web", server_id);
  if (!live.ok()) return live.status();
  // Next to it, on the same server.
  auto next = Allocate(owner_id, project_id, "web-next", live->server_id());
  if (!next.ok()) return next.status();
  if (next->server_id() != live->server_id()) {
    return absl::FailedPreconditionError(
        "the project's web and web-next ports are on different servers: release one");
  }
  return PortSlots{*std::move(live), *std::move(next)};
}

}  // namespace orchestrator::deploy
