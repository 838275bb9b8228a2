#include "services/common/peers/project_secrets.h"

#include <algorithm>

#include "services/common/peers/mesh_call.h"
#include "services/common/status/status.h"

namespace orchestrator {
namespace {
constexpr absl::string_view kProjectService = "the projects component";
// What one RevealSecrets names at most (its request's bound).
constexpr size_t kRevealBatch = 64;
// Pages of the listing read at most (500 names each).
constexpr int kMaxPages = 20;
}  // namespace

absl::StatusOr<projects::v1::Project> GetProjectAs(
    projects::v1::ProjectService::StubInterface& projects, const MeshCredential& mesh,
    std::chrono::milliseconds deadline, const std::string& owner_id,
    const std::string& project_id) {
  grpc::ClientContext ctx;
  PrepareMeshCall(ctx, mesh, deadline, owner_id);
  projects::v1::GetProjectRequest req;
  req.set_project_id(project_id);
  projects::v1::GetProjectResponse resp;
  if (grpc::Status s = projects.GetProject(&ctx, req, &resp); !s.ok()) {
    return FromPeerStatus(s, kProjectService);
  }
  return std::move(*resp.mutable_project());
}

absl::StatusOr<std::vector<std::string>> ListSecretNames(
    projects::v1::ProjectService::StubInterface& projects, const MeshCredential& mesh,
    std::chrono::milliseconds deadline, const std::string& owner_id,
    const std::string& project_id) {
  std::vector<std::string> names;
  projects::v1::ListSecretsRequest req;
  req.set_project_id(project_id);
  req.set_page_size(500);
  for (int page = 0; page < kMaxPages; ++page) {
    grpc::ClientContext ctx;
    PrepareMeshCall(ctx, mesh, deadline, owner_id);
    projects::v1::ListSecretsResponse resp;
    if (grpc::Status s = projects.ListSecrets(&ctx, req, &resp); !s.ok()) {
      return FromPeerStatus(s, kProjectService);
    }
    for (const auto& secret : resp.secrets()) names.push_back(secret.name());
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  return names;
}

absl::StatusOr<std::map<std::string, std::string>> RevealSecretValues(
    projects::v1::ProjectService::StubInterface& projects, const MeshCredential& mesh,
    std::chrono::milliseconds deadline, const std::string& owner_id, const std::string& project_id,
    const std::vector<std::string>& names) {
  std::map<std::string, std::string> values;
  for (size_t first = 0; first < names.size(); first += kRevealBatch) {
    grpc::ClientContext ctx;
    PrepareMeshCall(ctx, mesh, deadline, owner_id);
    projects::v1::RevealSecretsRequest req;
    req.set_project_id(project_id);
    for (size_t i = first; i < std::min(names.size(), first + kRevealBatch); ++i) {
      req.add_names(names[i]);
    }
    projects::v1::RevealSecretsResponse resp;
    if (grpc::Status s = projects.RevealSecrets(&ctx, req, &resp); !s.ok()) {
      return FromPeerStatus(s, kProjectService);
    }
    values.insert(resp.values().begin(), resp.values().end());
  }
  return values;
}

}  // namespace orchestrator
