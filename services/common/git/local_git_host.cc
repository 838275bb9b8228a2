#include "services/common/git/local_git_host.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "services/common/git/git_environment.h"
#include "services/common/git/local_repository.h"

namespace orchestrator::git {
namespace {

namespace fs = std::filesystem;

// Where a repository is made before it is renamed into place: a leading '.'
// no repository name has, so the server never serves a half-made one.
constexpr char kNewPrefix[] = ".new-";

}  // namespace

LocalGitHost::LocalGitHost(std::string root, std::string public_base_url,
                           std::string mesh_credential)
    : root_(std::move(root)),
      public_base_url_(absl::StripSuffix(public_base_url, "/")),
      mesh_credential_(std::move(mesh_credential)) {}

std::string LocalGitHost::PathOf(const std::string& name) const {
  return absl::StrCat(root_, "/", name, ".git");
}

Repository LocalGitHost::Described(const std::string& name) const {
  Repository repository;
  repository.clone_url = absl::StrCat(public_base_url_, "/git/", name, ".git");
  repository.full_name = name;
  return repository;
}

absl::StatusOr<std::optional<Repository>> LocalGitHost::Find(const std::string& name) {
  if (auto s = ValidateRepositoryName(name); !s.ok()) return s;
  std::error_code ec;
  if (!fs::is_directory(PathOf(name), ec)) {
    if (ec && ec != std::errc::no_such_file_or_directory) {
      return absl::UnavailableError(absl::StrCat("repository ", name, ": ", ec.message()));
    }
    return std::nullopt;
  }
  return Described(name);
}

absl::StatusOr<Repository> LocalGitHost::Create(const NewRepository& repository) {
  const std::string& name = repository.name;
  if (auto s = ValidateRepositoryName(name); !s.ok()) return s;
  const std::string path = PathOf(name);
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("git root ", root_, ": ", ec.message()));
  }
  if (fs::exists(path, ec)) {
    return absl::AlreadyExistsError(absl::StrCat("repository ", name, " already exists"));
  }
  std::string scratch = absl::StrCat(root_, "/", kNewPrefix, name, "-XXXXXX");
  if (mkdtemp(scratch.data()) == nullptr) {
    return absl::UnavailableError(absl::StrCat("git root ", root_, ": ", strerror(errno)));
  }
  auto made = [&]() -> absl::Status {
    if (auto s = InitBare(scratch, "main"); !s.ok()) return s;
    if (!repository.description.empty()) {
      std::ofstream(scratch + "/description", std::ios::trunc) << repository.description << "\n";
    }
    // Never over another: a repository made meanwhile stays as it is.
    if (renameat2(AT_FDCWD, scratch.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0) {
      if (errno == EEXIST || errno == ENOTEMPTY) {
        return absl::AlreadyExistsError(absl::StrCat("repository ", name, " already exists"));
      }
      return absl::UnavailableError(absl::StrCat("repository ", name, ": ", strerror(errno)));
    }
    return absl::OkStatus();
  }();
  if (!made.ok()) {
    fs::remove_all(scratch, ec);
    return made;
  }
  return Described(name);
}

absl::StatusOr<GitCredentials> LocalGitHost::PushCredentials(const Repository& repository) {
  (void)repository;  // the mesh's credential reaches every repository
  GitCredentials credentials;
  if (!mesh_credential_.empty()) {
    credentials.http_header = absl::StrCat("Authorization: Bearer ", mesh_credential_);
  }
  return credentials;
}

absl::StatusOr<std::string> LocalGitHost::PathOfExisting(const Repository& repository) {
  auto found = Find(repository.full_name);
  if (!found.ok()) return found.status();
  if (!*found) {
    return absl::NotFoundError(
        absl::StrCat("repository ", repository.full_name, " is not on the local git host"));
  }
  return PathOf(repository.full_name);
}

absl::Status LocalGitHost::Push(const Repository& repository, const std::string& dir,
                                const std::string& branch) {
  auto path = PathOfExisting(repository);
  if (!path.ok()) return path.status();
  return PushToBare(dir, *path, branch);
}

absl::StatusOr<std::string> LocalGitHost::Head(const Repository& repository,
                                               const std::string& branch) {
  auto path = PathOfExisting(repository);
  if (!path.ok()) return path.status();
  return BranchHead(*path, branch);
}

}  // namespace orchestrator::git
