#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "services/common/auth/mesh_identity.h"
#include "services/common/git/git_cli.h"
#include "services/common/git/github_host.h"
#include "services/common/git/mesh_git_credentials.h"
#include "services/engineering/domain/ports.h"

namespace orchestrator::engineering {

// GitRemote by the git command line from the platform's side: a bare
// mirror per project (fetched before each landing, so a bundle's base is
// there), the bundle fetched into it and checked, one atomic unforced push
// of the run's branch and the default branch, then the remote's refs read
// back. The mesh credential for the mesh's own git host, the GitHub token
// for GitHub; nothing else is pushed to.
class MirrorGitRemote final : public GitRemote {
 public:
  struct Options {
    std::string mirrors_dir;
    MeshCredentialPtr mesh;
    // Set (token non-empty) when projects' repositories are on GitHub.
    git::GitHubConfig github;
    absl::Duration git_timeout = absl::Minutes(5);
  };
  static absl::StatusOr<std::shared_ptr<GitRemote>> Make(Options options);

  absl::StatusOr<std::string> Head(const std::string& repository_url,
                                   const std::string& ref) override;
  absl::Status Land(const Landing& landing) override;
  absl::StatusOr<bool> Contains(const std::string& project_id, const std::string& repository_url,
                                const std::string& branch, const std::string& commit_sha) override;
  absl::StatusOr<std::string> OpenPullRequest(const std::string& repository_url,
                                              const std::string& head, const std::string& base,
                                              const std::string& title,
                                              const std::string& body) override;

 private:
  explicit MirrorGitRemote(Options options)
      : options_(std::move(options)), cli_(options_.git_timeout) {}

  absl::StatusOr<git::GitCredentials> CredentialsFor(const std::string& url) const;
  // FAILED_PRECONDITION for a repository this mesh did not make (on GitHub:
  // outside --github_owner).
  absl::Status CheckPushable(const std::string& url) const;
  // The project's mirror with `branch` fetched from the remote.
  absl::StatusOr<std::string> Mirror(const std::string& project_id, const std::string& url,
                                     const std::string& branch);
  absl::Mutex* LockOf(const std::string& project_id);

  Options options_;
  git::GitCli cli_;
  std::unique_ptr<git::GitHubHost> github_;
  absl::Mutex mu_;
  // One landing per project's mirror at a time.
  std::map<std::string, std::unique_ptr<absl::Mutex>> mirror_locks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace orchestrator::engineering
