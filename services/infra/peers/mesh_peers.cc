#include "services/infra/peers/mesh_peers.h"

#include <algorithm>

#include "services/common/peers/mesh_call.h"
#include "services/common/peers/project_secrets.h"
#include "services/common/status/status.h"

namespace orchestrator::infra {
namespace {
constexpr absl::string_view kDeployService = "the deploy component";
// Pages of a listing read at most.
constexpr int kMaxPages = 20;
}  // namespace

absl::StatusOr<deploy::v1::ListReleasesResponse> DeployServiceReleases::List(
    const std::string& owner_id, const deploy::v1::ListReleasesRequest& request) {
  grpc::ClientContext ctx;
  PrepareMeshCall(ctx, *mesh_, deadline_, owner_id);
  deploy::v1::ListReleasesResponse response;
  if (grpc::Status s = (*stub_).ListReleases(&ctx, request, &response); !s.ok()) {
    return FromPeerStatus(s, kDeployService);
  }
  return response;
}

absl::StatusOr<std::optional<deploy::v1::Release>> DeployServiceReleases::Live(
    const std::string& owner_id, const std::string& project_id) {
  deploy::v1::ListReleasesRequest request;
  request.set_project_id(project_id);
  request.set_status(deploy::v1::RELEASE_STATUS_LIVE);
  request.set_page_size(1);
  auto page = List(owner_id, request);
  if (!page.ok()) return page.status();
  if (page->releases().empty()) return std::nullopt;
  return std::move(*page->mutable_releases(0));
}

absl::StatusOr<std::vector<deploy::v1::Release>> DeployServiceReleases::Latest(
    const std::string& owner_id, const std::string& project_id, int limit) {
  std::vector<deploy::v1::Release> releases;
  deploy::v1::ListReleasesRequest request;
  request.set_project_id(project_id);
  for (int page = 0; page < kMaxPages && static_cast<int>(releases.size()) < limit; ++page) {
    request.set_page_size(std::min(500, limit - static_cast<int>(releases.size())));
    auto response = List(owner_id, request);
    if (!response.ok()) return response.status();
    for (auto& r : *response->mutable_releases()) releases.push_back(std::move(r));
    if (response->next_page_token().empty()) break;
    request.set_page_token(response->next_page_token());
  }
  if (static_cast<int>(releases.size()) > limit) releases.resize(limit);
  return releases;
}

absl::StatusOr<std::vector<std::string>> ProjectServiceSecrets::Values(
    const std::string& owner_id, const std::string& project_id) {
  // A secret deleted between the listing and the reveal is NOT_FOUND: list
  // again.
  absl::StatusOr<std::vector<std::string>> values = ListAndReveal(owner_id, project_id);
  if (values.status().code() == absl::StatusCode::kNotFound) {
    values = ListAndReveal(owner_id, project_id);
  }
  return values;
}

absl::StatusOr<std::vector<std::string>> ProjectServiceSecrets::ListAndReveal(
    const std::string& owner_id, const std::string& project_id) {
  auto names = ListSecretNames(*stub_, *mesh_, deadline_, owner_id, project_id);
  if (!names.ok()) return names.status();
  auto revealed = RevealSecretValues(*stub_, *mesh_, deadline_, owner_id, project_id, *names);
  if (!revealed.ok()) return revealed.status();
  std::vector<std::string> values;
  for (auto& [name, value] : *revealed) values.push_back(std::move(value));
  return values;
}

absl::StatusOr<bool> ProjectServiceRegistry::Exists(const std::string& owner_id,
                                                    const std::string& project_id) {
  auto project = GetProjectAs(*stub_, *mesh_, deadline_, owner_id, project_id);
  if (project.ok()) return true;
  if (project.status().code() == absl::StatusCode::kNotFound) return false;
  return project.status();
}

}  // namespace orchestrator::infra
