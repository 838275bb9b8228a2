#pragma once

#include <string>

#include "services/common/auth/mesh_identity.h"
#include "services/common/git/git_cli.h"
#include "services/deploy/domain/deploy_ports.h"

namespace orchestrator::deploy {

// The project's code over git (the command line: repositories live on a git
// host across a network). The mesh's credential goes only to the local git
// host's repositories (http URLs on loopback, which only the mesh records);
// any other repository is read anonymously.
class GitSourceRepository final : public SourceRepository {
 public:
  GitSourceRepository(MeshCredentialPtr mesh, absl::Duration timeout)
      : mesh_(std::move(mesh)), cli_(timeout) {}

  absl::StatusOr<std::string> Head(const std::string& url) override;
  absl::Status Checkout(const std::string& url, const std::string& commit,
                        const std::string& dir) override;

 private:
  git::GitCredentials CredentialsFor(const std::string& url) const;

  MeshCredentialPtr mesh_;
  git::GitCli cli_;
};

}  // namespace orchestrator::deploy
