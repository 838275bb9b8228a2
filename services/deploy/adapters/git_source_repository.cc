#include "services/deploy/adapters/git_source_repository.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "services/common/git/mesh_git_credentials.h"

namespace orchestrator::deploy {
namespace fs = std::filesystem;

git::GitCredentials GitSourceRepository::ReadCredentials(const std::string& url) const {
  git::MeshGitAccess access;
  access.mesh_token = mesh_->value();
  // Not the mesh's: a public repository, read as anyone would.
  return git::MeshCredentialsFor(access, url).value_or(git::GitCredentials{});
}

absl::StatusOr<std::string> GitSourceRepository::Head(const std::string& url) {
  return cli_.RemoteHead(url, "HEAD", ReadCredentials(url));
}

absl::Status GitSourceRepository::Checkout(const std::string& url, const std::string& commit,
                                           const std::string& dir) {
  if (auto s = cli_.CheckoutCommit(url, commit, dir, ReadCredentials(url)); !s.ok()) return s;
  // The files as git records them (0644, or 0755 when executable), whatever
  // the umask we run with: an image's unprivileged user must read them.
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_symlink(ec)) continue;
    if (it->path().filename() == ".git" && it->is_directory(ec)) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_directory(ec)) {
      fs::permissions(it->path(), fs::perms(0755), ec);
    } else if (it->is_regular_file(ec)) {
      const bool executable =
          (it->status(ec).permissions() & fs::perms::owner_exec) != fs::perms::none;
      fs::permissions(it->path(), fs::perms(executable ? 0755 : 0644), ec);
    }
  }
  if (ec) return absl::InternalError(absl::StrCat("checkout in ", dir, ": ", ec.message()));
  fs::permissions(dir, fs::perms(0755), ec);
  return absl::OkStatus();
}

}  // namespace orchestrator::deploy
