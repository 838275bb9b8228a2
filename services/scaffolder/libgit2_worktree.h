#pragma once

#include "services/common/git/local_repository.h"
#include "services/scaffolder/domain/scaffold_run.h"

namespace orchestrator::scaffolder {

// GitWorktree in process (libgit2): commits as the scaffolder on `branch`.
class Libgit2Worktree final : public GitWorktree {
 public:
  explicit Libgit2Worktree(std::string branch = "main") : branch_(std::move(branch)) {}

  absl::StatusOr<std::string> CommitAll(const std::string& dir, const std::string& message,
                                        absl::Time when) override {
    return git::CommitAll(dir, branch_, message,
                          {"Codegen Orchestrator", "scaffolder@orchestrator.invalid", when});
  }

 private:
  std::string branch_;
};

}  // namespace orchestrator::scaffolder
