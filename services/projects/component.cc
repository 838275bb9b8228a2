#include "services/projects/component.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "services/common/crypto/secret_box.h"
#include "services/common/git/mesh_git_credentials.h"
#include "services/projects/api/project_service.h"
#include "services/projects/store/pg_project_store.h"

// The flags this component reads (ReadFlags), wherever it is hosted.
ABSL_FLAG(std::string, secrets_key_file, "",
          "file with the base64 32-byte key sealing project secrets and the SSH keys of "
          "servers (read by the projects and infra components)");

namespace orchestrator::projects {
namespace {

// The GitHub --github_api_url names (api.github.com serves github.com).
PullRequestHost PullRequestsOn(const std::string& github_api_url) {
  auto api = http::BaseUrl::Parse(github_api_url);
  if (!api.ok() || !api->unix_socket.empty()) return {};
  return {.name = absl::StrCat(api->tls ? "https://" : "http://",
                               absl::StripPrefix(api->HostHeader(), "api."), "/…"),
          .holds = [api = *api](absl::string_view url) {
            return git::IsGitHubRepositoryUrl(api, url);
          }};
}

class ProjectsComponent final : public Component {
 public:
  ProjectsComponent(ComponentContext& ctx, SecretBox box)
      : catalog_(std::make_shared<ProjectCatalog>(
            std::make_shared<PgProjectStore>(ctx.pool), std::move(box),
            CatalogOptions{.repository_urls = {},
                           .pull_requests = PullRequestsOn(ctx.config.github_api_url)})) {
    Serve(ctx.host, std::make_unique<ProjectServiceImpl>(catalog_, ctx.executor),
          v1::ProjectService::service_full_name());
  }

 private:
  std::shared_ptr<ProjectCatalog> catalog_;
};

absl::Status ReadFlags(MeshConfig& config) {
  config.secrets_key_file = absl::GetFlag(FLAGS_secrets_key_file);
  return absl::OkStatus();
}

}  // namespace

ComponentSpec Registration() {
  return {.name = "projects",
          .service = v1::ProjectService::service_full_name(),
          .peers = {},
          .migrations = &db::ProjectsMigrations,
          .read_flags = &ReadFlags,
          .build = [](ComponentContext& ctx) -> absl::StatusOr<std::unique_ptr<Component>> {
            auto box = SecretBoxFromKeyFile("--secrets_key_file", ctx.config.secrets_key_file);
            if (!box.ok()) return box.status();
            return std::make_unique<ProjectsComponent>(ctx, *std::move(box));
          }};
}

}  // namespace orchestrator::projects
