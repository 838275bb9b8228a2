#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace orchestrator::git {

// Who a commit is by, and when (a fixed time makes the same tree, message
// and parents give the same commit id: a retried scaffold commits again
// and gets the very commit it pushed before).
struct Signature {
  std::string name;
  std::string email;
  absl::Time when;
};

// Repositories on this machine's disk, worked on in process through
// libgit2: no git process is started, no configuration of the host's
// (system, global, XDG) is read, no hook runs. GitCli is for remotes across
// a network (its timeouts, proxies and TLS are the ones every git user
// has); this is for the repositories the mesh keeps itself. Errors carry
// libgit2's message: NOT_FOUND for a missing repository or ref,
// FAILED_PRECONDITION when a push is refused (not a fast-forward),
// INVALID_ARGUMENT naming the argument, INTERNAL otherwise. Safe to call
// from many threads on different repositories.

// Makes `dir` (created if missing) a repository whose first branch is
// `branch`, with every file under it (bar what its .gitignore excludes)
// committed by `author`; returns the commit id. The message is cleaned up
// as `git commit --cleanup=whitespace` does.
absl::StatusOr<std::string> CommitAll(const std::string& dir, const std::string& branch,
                                      const std::string& message, const Signature& author);

// Makes `dir` (must not exist, or be empty) a bare repository whose HEAD
// names `branch`.
absl::Status InitBare(const std::string& dir, const std::string& branch);

// Pushes `branch` of the repository at `dir` (a work tree or a bare one) to
// the same branch of the bare repository at `bare_dir` (no force): the
// objects it lacks are copied, then the branch moves if that is a
// fast-forward (FAILED_PRECONDITION otherwise).
absl::Status PushToBare(const std::string& dir, const std::string& bare_dir,
                        const std::string& branch);

// The commit `branch` of the repository at `dir` points at.
absl::StatusOr<std::string> BranchHead(const std::string& dir, const std::string& branch);

}  // namespace orchestrator::git
