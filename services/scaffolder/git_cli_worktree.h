#pragma once

#include "services/common/git/git_cli.h"
#include "services/scaffolder/domain/scaffold_run.h"

namespace orchestrator::scaffolder {

// GitWorktree over the git command line: commits as the scaffolder on
// `branch`.
class GitCliWorktree final : public GitWorktree {
 public:
  explicit GitCliWorktree(std::string branch = "main") : branch_(std::move(branch)) {}

  absl::StatusOr<std::string> CommitAll(const std::string& dir, const std::string& message,
                                        absl::Time when) override {
    return cli_.InitAndCommitAll(dir, branch_, message,
                                 {"Codegen Orchestrator", "scaffolder@orchestrator.invalid", when});
  }
  absl::Status Push(const std::string& dir, const std::string& url,
                    const git::GitCredentials& credentials) override {
    return cli_.Push(dir, url, branch_, credentials);
  }
  absl::StatusOr<std::string> RemoteHead(const std::string& url,
                                         const git::GitCredentials& credentials) override {
    return cli_.RemoteHead(url, "refs/heads/" + branch_, credentials);
  }

 private:
  std::string branch_;
  git::GitCli cli_;
};

}  // namespace orchestrator::scaffolder
