#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/git/git_host.h"

namespace orchestrator::git {

// The one-machine git host (DESIGN.md "Outside systems"): bare repositories
// under `root`, one per project (`<root>/<name>.git`, the name being the
// project id), which GitSmartHttpServer serves at
// `<public_base_url>/git/<name>.git`. The mesh pushes with its own
// credential, admin over the mesh.
class LocalGitHost final : public GitHost {
 public:
  // `public_base_url`: how sandboxes, users and deploys reach the smart HTTP
  // server, e.g. "http://127.0.0.1:50080" (a trailing '/' is dropped).
  // `mesh_credential`: the mesh's token, sent as a bearer token.
  LocalGitHost(std::string root, std::string public_base_url, std::string mesh_credential,
               absl::Duration git_timeout = absl::Seconds(30));

  std::string Kind() const override { return "local"; }

  // INVALID_ARGUMENT naming repository_name for a name that is not 1 to 128
  // of [A-Za-z0-9_-].
  absl::StatusOr<std::optional<Repository>> Find(const std::string& name) override;

  // `git init --bare` in a hidden directory under the root, renamed into
  // place: a crash never leaves a half-made repository visible. Accepts
  // pushes over smart HTTP (http.receivepack). ALREADY_EXISTS when the name
  // is taken; INVALID_ARGUMENT as Find.
  absl::StatusOr<Repository> Create(const NewRepository& repository) override;

  // "Authorization: Bearer <mesh credential>".
  absl::StatusOr<GitCredentials> PushCredentials(const Repository& repository) override;

  // Where the repository named `name` is kept (`name` already validated).
  std::string PathOf(const std::string& name) const;
  const std::string& root() const { return root_; }

 private:
  Repository Described(const std::string& name) const;

  const std::string root_;
  const std::string public_base_url_;
  const std::string mesh_credential_;
  const absl::Duration git_timeout_;
};

}  // namespace orchestrator::git
