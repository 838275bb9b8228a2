#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/git/git_host.h"

namespace orchestrator::git {

// The git command line, for remotes across a network (repositories on this
// machine's disk go through local_repository.h, in process), run as a child process with an
// environment that holds nothing of the host's (no system or global config, no credential helper,
// no terminal prompts), a deadline and bounded output. Errors carry git's own message (e.g. the
// remote's reason for refusing a push): UNAVAILABLE when the remote cannot be reached,
// FAILED_PRECONDITION when it refuses, DEADLINE_EXCEEDED at the deadline, CANCELLED when `cancel`
// turns true.
class GitCli {
 public:
  explicit GitCli(absl::Duration timeout = absl::Minutes(2),
                  const std::atomic<bool>* cancel = nullptr)
      : timeout_(timeout), cancel_(cancel) {}

  // Pushes `branch` of the repository at `dir` to `url` (no force).
  absl::Status Push(const std::string& dir, const std::string& url, const std::string& branch,
                    const GitCredentials& credentials) const;

  // The commit id `url`'s `ref` (e.g. "refs/heads/main") points at; NOT_FOUND
  // when there is no such ref.
  absl::StatusOr<std::string> RemoteHead(const std::string& url, const std::string& ref,
                                         const GitCredentials& credentials) const;

  // `commit` (a full commit id) of `url` checked out into `dir` (must not
  // exist), detached. NOT_FOUND when the repository has no such commit.
  absl::Status CheckoutCommit(const std::string& url, const std::string& commit,
                              const std::string& dir, const GitCredentials& credentials) const;

  // Clones `ref` (a branch or tag) of `url` into `dir` (must not exist),
  // only the last commit.
  absl::Status CloneAt(const std::string& url, const std::string& ref, const std::string& dir,
                       const GitCredentials& credentials) const;

 private:
  absl::Duration timeout_;
  const std::atomic<bool>* cancel_;
};

}  // namespace orchestrator::git
