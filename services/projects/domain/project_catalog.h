#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "orchestrator/common/v1/run_contract.pb.h"
#include "orchestrator/projects/v1/projects.pb.h"
#include "services/common/auth/principal.h"
#include "services/common/crypto/secret_box.h"
#include "services/projects/domain/project_store.h"

namespace orchestrator::projects {

// Which repository URLs a project may record. Strict by default: https://
// and ssh:// (or user@host:path) to public hosts, never a password.
struct RepositoryUrlPolicy {
  // Also loopback, link-local and private hosts, and plain http:// to them
  // (a git server on the operator's own machine or network).
  bool allow_local_hosts = false;
};

// The GitHub the platform opens pull requests on (--github_api_url): only
// a project whose repository is there may take its changes by pull request.
struct PullRequestHost {
  // Where such a repository lives, for errors: "https://github.com/…".
  std::string name;
  // Whether a repository URL is on it; unset: none is.
  std::function<bool(absl::string_view url)> holds;
};

struct CatalogOptions {
  RepositoryUrlPolicy repository_urls;
  PullRequestHost pull_requests;
};

// The rules of ProjectService, independent of gRPC: validation (errors name
// the field), owner scoping (another owner's project is NOT_FOUND), project
// scoping (a caller limited to one project, a worker's agent token, finds no
// other and creates none), field masks, and sealing secret values before
// they reach the store.
class ProjectCatalog final {
 public:
  ProjectCatalog(ProjectStorePtr store, SecretBox secrets, CatalogOptions options = {})
      : store_(std::move(store)), secrets_(std::move(secrets)), options_(std::move(options)) {}

  absl::StatusOr<v1::Project> Create(const Principal& caller, const v1::CreateProjectRequest& req);
  absl::StatusOr<v1::Project> Get(const Principal& caller, const v1::GetProjectRequest& req);
  absl::StatusOr<v1::ListProjectsResponse> List(const Principal& caller,
                                                const v1::ListProjectsRequest& req);
  absl::StatusOr<v1::Project> Update(const Principal& caller, const v1::UpdateProjectRequest& req);
  absl::Status Delete(const Principal& caller, const v1::DeleteProjectRequest& req);

  absl::StatusOr<v1::Secret> SetSecret(const Principal& caller, const v1::SetSecretRequest& req);
  absl::StatusOr<v1::ListSecretsResponse> ListSecrets(const Principal& caller,
                                                      const v1::ListSecretsRequest& req);
  absl::Status DeleteSecret(const Principal& caller, const v1::DeleteSecretRequest& req);

  // Mesh only: the values of secrets a worker was granted by name, for a
  // caller acting for the worker's user (NOT_FOUND for another owner's
  // project or a secret that does not exist, naming it).
  absl::StatusOr<v1::RevealSecretsResponse> RevealSecrets(const Principal& caller,
                                                          const v1::RevealSecretsRequest& req);

 private:
  absl::StatusOr<std::string> RevealSecret(const Principal& caller, absl::string_view project_id,
                                           absl::string_view name);

  // List for a caller limited to one project: that one, if it matches.
  absl::StatusOr<v1::ListProjectsResponse> ListReachable(const Principal& caller,
                                                         const ProjectFilter& filter,
                                                         const PageRequest& page);

  absl::StatusOr<v1::Project> Visible(const Principal& caller, absl::string_view field,
                                      absl::string_view project_id);

  // FAILED_PRECONDITION when `project` takes changes by pull request but its
  // repository is not on options_.pull_requests.
  absl::Status CheckChangeDelivery(const v1::Project& project) const;

  ProjectStorePtr store_;
  SecretBox secrets_;
  const CatalogOptions options_;
};

// Field checks, exposed for unit tests. Each error names the field.
absl::Status ValidateProjectName(absl::string_view field, absl::string_view name);
absl::Status ValidateSecretName(absl::string_view field, absl::string_view name);
absl::Status ValidateRepositoryUrl(absl::string_view field, absl::string_view url,
                                   const RepositoryUrlPolicy& policy = {});
// A template id: "python-http" or "python-http@1.2.0" (no slashes, no dots
// outside the version).
absl::Status ValidateTemplateId(absl::string_view field, absl::string_view id);
// A template's version: "1.2.0", "v2-rc.1" (empty = none).
absl::Status ValidateTemplateVersion(absl::string_view field, absl::string_view version);
// Question names [a-z][a-z0-9_]{0,63}; values one line each.
absl::Status ValidateTemplateAnswers(
    absl::string_view field, const google::protobuf::Map<std::string, std::string>& answers);
// All empty means no contract. Otherwise a port (1-65535) and a test
// command; health_path "/..."; build_file relative, inside the repository;
// required_secrets secret names. Errors name "<field>.<member>".
absl::Status ValidateRunContract(absl::string_view field, const common::v1::RunContract& contract);

}  // namespace orchestrator::projects
