#include "services/engineering/adapters/mirror_git_remote.h"

#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace orchestrator::engineering {
namespace fs = std::filesystem;

absl::StatusOr<std::shared_ptr<GitRemote>> MirrorGitRemote::Make(Options options) {
  auto remote = std::shared_ptr<MirrorGitRemote>(new MirrorGitRemote(std::move(options)));
  if (!remote->options_.github.token.empty()) {
    auto github = git::GitHubHost::FromConfig(remote->options_.github);
    if (!github.ok()) return github.status();
    remote->github_ = *std::move(github);
  }
  return remote;
}

namespace {

// The owner segment of an https://HOST/OWNER/NAME[.git] URL.
std::string OwnerOf(absl::string_view url) {
  if (size_t scheme = url.find("://"); scheme != absl::string_view::npos) {
    url.remove_prefix(scheme + 3);
  }
  std::vector<absl::string_view> parts = absl::StrSplit(url, '/', absl::SkipEmpty());
  return parts.size() >= 3 ? absl::AsciiStrToLower(parts[1]) : "";
}

}  // namespace

absl::Status MirrorGitRemote::CheckPushable(const std::string& url) const {
  // On GitHub the token may write far more than this mesh's repositories: a
  // project naming someone else's repository must not get it pushed to. The
  // mesh makes its repositories under --github_owner.
  if (github_ == nullptr || options_.github.owner.empty()) return absl::OkStatus();
  if (absl::StartsWith(url, "http://127.0.0.1:") || absl::StartsWith(url, "http://localhost:") ||
      absl::StartsWith(url, "http://[::1]:")) {
    return absl::OkStatus();
  }
  if (OwnerOf(url) != absl::AsciiStrToLower(options_.github.owner)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the platform pushes only to repositories of --github_owner ",
                     options_.github.owner, "; this project's repository belongs to someone else"));
  }
  return absl::OkStatus();
}

absl::StatusOr<git::GitCredentials> MirrorGitRemote::CredentialsFor(const std::string& url) const {
  git::MeshGitAccess access;
  access.mesh_token = options_.mesh->value();
  if (!options_.github.token.empty()) {
    access.github_api_url = options_.github.api_url;
    access.github_token = options_.github.token;
  }
  return git::MeshCredentialsFor(access, url);
}

absl::Mutex* MirrorGitRemote::LockOf(const std::string& project_id) {
  absl::MutexLock lock(&mu_);
  auto& m = mirror_locks_[project_id];
  if (!m) m = std::make_unique<absl::Mutex>();
  return m.get();
}

absl::StatusOr<std::string> MirrorGitRemote::Mirror(const std::string& project_id,
                                                    const std::string& url,
                                                    const std::string& branch) {
  auto creds = CredentialsFor(url);
  if (!creds.ok()) return creds.status();
  const std::string dir = (fs::path(options_.mirrors_dir) / (project_id + ".git")).string();
  if (auto s = cli_.Fetch(dir, url, {absl::StrCat("+refs/heads/", branch, ":refs/heads/", branch)},
                          *creds);
      !s.ok()) {
    return s;
  }
  return dir;
}

absl::StatusOr<std::string> MirrorGitRemote::Head(const std::string& repository_url,
                                                  const std::string& ref) {
  auto creds = CredentialsFor(repository_url);
  if (!creds.ok()) return creds.status();
  return cli_.RemoteHead(repository_url, ref, *creds);
}

absl::Status MirrorGitRemote::Land(const Landing& landing) {
  if (auto s = CheckPushable(landing.repository_url); !s.ok()) return s;
  auto creds = CredentialsFor(landing.repository_url);
  if (!creds.ok()) return creds.status();
  absl::MutexLock lock(LockOf(landing.project_id));
  const std::string base_branch =
      landing.default_branch.empty() ? std::string() : landing.default_branch;
  // The mirror holds the remote's default branch, so the bundle's base is
  // there (for a branch-only push, whatever was fetched before, or the base
  // fetched by its branch now).
  const std::string dir = (fs::path(options_.mirrors_dir) / (landing.project_id + ".git")).string();
  std::vector<std::string> fetch;
  if (!base_branch.empty()) {
    fetch.push_back(absl::StrCat("+refs/heads/", base_branch, ":refs/heads/", base_branch));
  } else {
    fetch.push_back("+HEAD:refs/orchestrator/remote-head");
  }
  if (auto s = cli_.Fetch(dir, landing.repository_url, fetch, *creds); !s.ok()) return s;
  auto head =
      cli_.FetchBundle(dir, landing.bundle_path, absl::StrCat("refs/heads/", landing.run_branch));
  if (!head.ok()) return head.status();
  if (*head != landing.commit_sha) {
    return absl::InternalError(
        absl::StrCat("the bundle holds ", *head, ", not the run's commit ", landing.commit_sha));
  }
  std::vector<std::string> refspecs = {
      absl::StrCat(landing.commit_sha, ":refs/heads/", landing.run_branch)};
  if (!landing.default_branch.empty()) {
    refspecs.push_back(absl::StrCat(landing.commit_sha, ":refs/heads/", landing.default_branch));
  }
  git::PushOptions push;
  push.atomic = true;
  if (auto s = cli_.PushRefspecs(dir, landing.repository_url, refspecs, push, *creds); !s.ok()) {
    return s;
  }
  // Proof it landed: the remote's refs, read back.
  std::vector<std::string> refs = {absl::StrCat("refs/heads/", landing.run_branch)};
  if (!landing.default_branch.empty()) {
    refs.push_back(absl::StrCat("refs/heads/", landing.default_branch));
  }
  for (const auto& ref : refs) {
    auto at = cli_.RemoteHead(landing.repository_url, ref, *creds);
    if (!at.ok()) return at.status();
    if (*at != landing.commit_sha) {
      return absl::UnavailableError(
          absl::StrCat("after the push ", ref, " is at ", *at, ", not ", landing.commit_sha));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> MirrorGitRemote::Contains(const std::string& project_id,
                                               const std::string& repository_url,
                                               const std::string& branch,
                                               const std::string& commit_sha) {
  absl::MutexLock lock(LockOf(project_id));
  auto dir = Mirror(project_id, repository_url, branch);
  if (!dir.ok()) return dir.status();
  auto on = cli_.IsAncestor(*dir, commit_sha, absl::StrCat("refs/heads/", branch));
  // A commit the mirror never saw is on no branch it fetched.
  if (absl::IsNotFound(on.status())) return false;
  return on;
}

absl::StatusOr<std::string> MirrorGitRemote::OpenPullRequest(const std::string& repository_url,
                                                             const std::string& head,
                                                             const std::string& base,
                                                             const std::string& title,
                                                             const std::string& body) {
  if (github_ == nullptr) {
    return absl::FailedPreconditionError(
        "pull requests need the GitHub host (--git_host=github); this mesh's repositories are "
        "its own: set the project's change_delivery to FAST_FORWARD");
  }
  if (auto s = CheckPushable(repository_url); !s.ok()) return s;
  // GitHub's name of the repository: the URL's last two path segments
  // (https://github.com/<owner>/<name>[.git]).
  absl::string_view path = repository_url;
  if (size_t scheme = path.find("://"); scheme != absl::string_view::npos) {
    path.remove_prefix(scheme + 3);
  }
  std::vector<absl::string_view> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  if (parts.size() < 3) {
    return absl::FailedPreconditionError(
        absl::StrCat("'", repository_url, "' does not name a GitHub repository"));
  }
  absl::string_view name = parts.back();
  absl::ConsumeSuffix(&name, ".git");
  return github_->OpenPullRequest(absl::StrCat(parts[parts.size() - 2], "/", name), head, base,
                                  title, body);
}

}  // namespace orchestrator::engineering
