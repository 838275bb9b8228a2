#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "orchestrator/engineering/v1/engineering.pb.h"
#include "services/common/peers/agent_driver.h"

namespace orchestrator::engineering {

// How a command the platform ran in the sandbox ended, with its output.
struct CommandRun {
  agents::v1::CommandResult result;
  std::string output;  // stdout (with stderr when merged), at most the asked bound
  bool ok() const { return result.exit_code() == 0 && !result.timed_out() && result.signal() == 0; }
};

// Who a run's commit is by, and when.
struct CommitInputs {
  std::string tree;
  std::string parent;
  std::string author_name;
  std::string author_email;
  std::string message;
  absl::Time time;
};

// The repository inside a developer worker's sandbox (/workspace/repo), as
// the platform works it: every git command runs there, through
// AgentService.RunCommand, as plumbing with hooks off, so nothing of the
// agent-controlled repository runs on the platform's side. Only the clone
// and a rebase's fetch carry the worker's (read-only) token.
class Workspace {
 public:
  static constexpr char kRepoDir[] = "repo";
  // `argv` with the sandbox's loopback its own: reached directly (a test's
  // server), not through the egress proxy (the host's loopback).
  static std::vector<std::string> OnLocalLoopback(std::vector<std::string> argv);

  Workspace(AgentDriverPtr agents, std::string owner_id, std::string worker_id,
            Cancellation& cancel)
      : agents_(std::move(agents)),
        owner_id_(std::move(owner_id)),
        worker_id_(std::move(worker_id)),
        cancel_(cancel) {}

  // Runs argv in `dir` (relative to /workspace); output kept up to
  // `max_output` bytes (more is FAILED_PRECONDITION: a bundle must be whole;
  // 0 keeps none), and each chunk also handed to `on_output` when set.
  absl::StatusOr<CommandRun> Run(std::vector<std::string> argv, const std::string& dir,
                                 absl::Duration timeout, bool merge_stderr = false,
                                 bool with_token = false, const std::string& stdin_bytes = "",
                                 size_t max_output = 1 << 20,
                                 const std::function<void(const std::string&)>& on_output = {});

  // Clones `url` into repo unless it is there; then the branch its HEAD is
  // on and the commit (FAILED_PRECONDITION when there is none).
  struct Clone {
    bool cloned_now = false;
    std::string default_branch;
    std::string head;
  };
  absl::StatusOr<Clone> EnsureClone(const std::string& url);
  // Everything in the working tree (what .gitignore leaves), as a tree id.
  absl::StatusOr<std::string> StageTree();
  absl::StatusOr<std::string> TreeOf(const std::string& commit);
  bool HasCommit(const std::string& commit);
  // The commit (deterministic: the same inputs make the same id), and
  // refs/heads/<branch> pointing at it.
  absl::StatusOr<std::string> Commit(const CommitInputs& inputs, const std::string& branch);
  // A bundle of `branch` over `base` (base..branch).
  absl::StatusOr<std::string> Bundle(const std::string& base, const std::string& branch);
  // The files between two commits.
  absl::StatusOr<std::vector<v1::FileChange>> Diff(const std::string& from, const std::string& to);
  // `commit` re-applied on `url`'s `branch` as it is now, in the working
  // tree: returns the new parent. FAILED_PRECONDITION when it conflicts.
  absl::StatusOr<std::string> Reapply(const std::string& url, const std::string& branch,
                                      const std::string& commit);

 private:
  absl::StatusOr<std::string> Git(std::vector<std::string> args,
                                  const std::string& stdin_bytes = "", size_t max_output = 1 << 20,
                                  std::vector<std::pair<std::string, std::string>> env = {});

  AgentDriverPtr agents_;
  std::string owner_id_;
  std::string worker_id_;
  Cancellation& cancel_;
};

}  // namespace orchestrator::engineering
