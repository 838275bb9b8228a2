#include "services/scaffolder/peers/project_service_directory.h"

#include "services/common/peers/mesh_call.h"
#include "services/common/status/status.h"

namespace orchestrator::scaffolder {
namespace {
constexpr absl::string_view kProjectService = "the projects component";
}  // namespace

projects::v1::ProjectService::StubInterface& ProjectServiceDirectory::Stub() {
  absl::call_once(once_, [this] { stub_ = make_stub_(); });
  return *stub_;
}

absl::StatusOr<projects::v1::Project> ProjectServiceDirectory::Get(const std::string& owner_id,
                                                                   const std::string& project_id) {
  grpc::ClientContext ctx;
  PrepareMeshCall(ctx, *mesh_, deadline_, owner_id);
  projects::v1::GetProjectRequest req;
  req.set_project_id(project_id);
  projects::v1::GetProjectResponse resp;
  if (grpc::Status s = Stub().GetProject(&ctx, req, &resp); !s.ok()) {
    return FromPeerStatus(s, kProjectService);
  }
  return std::move(*resp.mutable_project());
}

absl::Status ProjectServiceDirectory::Record(const std::string& owner_id,
                                             const projects::v1::Project& outcome) {
  grpc::ClientContext ctx;
  PrepareMeshCall(ctx, *mesh_, deadline_, owner_id);
  projects::v1::UpdateProjectRequest req;
  *req.mutable_project() = outcome;
  for (const char* path :
       {"repository_url", "template_id", "template_version", "template_answers", "run_contract"}) {
    req.mutable_update_mask()->add_paths(path);
  }
  projects::v1::UpdateProjectResponse resp;
  if (grpc::Status s = Stub().UpdateProject(&ctx, req, &resp); !s.ok()) {
    return FromPeerStatus(s, kProjectService);
  }
  return absl::OkStatus();
}

absl::Status ProjectServiceDirectory::StoreSecret(const std::string& owner_id,
                                                  const std::string& project_id,
                                                  const std::string& name,
                                                  const std::string& value) {
  grpc::ClientContext ctx;
  PrepareMeshCall(ctx, *mesh_, deadline_, owner_id);
  projects::v1::SetSecretRequest req;
  req.set_project_id(project_id);
  req.set_name(name);
  req.set_value(value);
  projects::v1::SetSecretResponse resp;
  if (grpc::Status s = Stub().SetSecret(&ctx, req, &resp); !s.ok()) {
    return FromPeerStatus(s, kProjectService);
  }
  return absl::OkStatus();
}

}  // namespace orchestrator::scaffolder
