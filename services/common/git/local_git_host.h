#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "services/common/git/git_host.h"

namespace orchestrator::git {

// The one-machine git host (DESIGN.md "Outside systems"): bare repositories
// under `root`, one per project (`<root>/<name>.git`, the name being the
// project id), which GitSmartHttpServer serves at
// `<public_base_url>/git/<name>.git`. The mesh itself works on them in
// process (local_repository.h): no git process, no HTTP round trip.
class LocalGitHost final : public GitHost {
 public:
  // `public_base_url`: how sandboxes, users and deploys reach the smart HTTP
  // server, e.g. "http://127.0.0.1:50080" (a trailing '/' is dropped).
  // `mesh_credential`: the mesh's token, sent as a bearer token.
  LocalGitHost(std::string root, std::string public_base_url, std::string mesh_credential);

  std::string Kind() const override { return "local"; }

  // INVALID_ARGUMENT naming repository_name for a name that is not 1 to 128
  // of [A-Za-z0-9_-].
  absl::StatusOr<std::optional<Repository>> Find(const std::string& name) override;

  // A bare repository made in a hidden directory under the root, renamed into
  // place: a crash never leaves a half-made repository visible. Accepts
  // pushes over smart HTTP (http.receivepack). ALREADY_EXISTS when the name
  // is taken; INVALID_ARGUMENT as Find.
  absl::StatusOr<Repository> Create(const NewRepository& repository) override;

  // "Authorization: Bearer <mesh credential>".
  absl::StatusOr<GitCredentials> PushCredentials(const Repository& repository) override;

  // Straight into the bare repository on disk (what the smart HTTP server
  // serves), in process.
  absl::Status Push(const Repository& repository, const std::string& dir,
                    const std::string& branch) override;
  absl::StatusOr<std::string> Head(const Repository& repository,
                                   const std::string& branch) override;

  // Where the repository named `name` is kept (`name` already validated).
  std::string PathOf(const std::string& name) const;
  const std::string& root() const { return root_; }

 private:
  Repository Described(const std::string& name) const;
  // The bare repository of `repository` (by its full_name), which must exist.
  absl::StatusOr<std::string> PathOfExisting(const Repository& repository);

  const std::string root_;
  const std::string public_base_url_;
  const std::string mesh_credential_;
};

}  // namespace orchestrator::git
