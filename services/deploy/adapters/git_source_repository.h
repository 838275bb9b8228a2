#pragma once

#include <string>

#include "services/common/auth/mesh_identity.h"
#include "services/common/git/git_cli.h"
#include "services/deploy/domain/deploy_ports.h"

namespace orchestrator::deploy {

// The project's code over git (the command line: repositories live on a git
// host across a network), with the mesh's credentials for its own git host
// (git::MeshCredentialsFor); any other repository is read anonymously.
class GitSourceRepository final : public SourceRepository {
 public:
  GitSourceRepository(MeshCredentialPtr mesh, absl::Duration timeout)
      : mesh_(std::move(mesh)), cli_(timeout) {}

  absl::StatusOr<std::string> Head(const std::string& url) override;
  absl::Status Checkout(const std::string& url, const std::string& commit,
                        const std::string& dir) override;

 private:
  git::GitCredentials ReadCredentials(const std::string& url) const;

  MeshCredentialPtr mesh_;
  git::GitCli cli_;
};

}  // namespace orchestrator::deploy
