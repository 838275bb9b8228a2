#pragma once

#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/git/git_host.h"

namespace orchestrator::git {

// How PushRefspecs may move the remote's refs.
struct PushOptions {
  // Every ref moves, or none does (git push --atomic).
  bool atomic = false;
  // The only refs that may move other than forward, each only from the
  // commit given (--force-with-lease=<ref>:<commit>): full ref name → the
  // full commit id it must be at now, or "" when it must not exist yet.
  // Every one must be a destination of the refspecs pushed.
  std::map<std::string, std::string> force_with_lease = {};
};

// The git command line, for remotes across a network (repositories on this
// machine's disk go through local_repository.h, in process), run as a child process with an
// environment that holds nothing of the host's (no system or global config, no credential helper,
// no terminal prompts), hooks off (core.hooksPath=/dev/null), no automatic gc, a deadline and
// bounded output. Remotes are always explicit URLs (or paths), never a remote's name. Errors carry
// git's own message (e.g. the remote's reason for refusing a push): UNAVAILABLE when the remote
// cannot be reached, FAILED_PRECONDITION when it refuses, DEADLINE_EXCEEDED at the deadline,
// CANCELLED when `cancel` turns true.
//
// Repositories at `dir` below are bare (the engineering mirrors) or work
// trees (their .git).
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

  // The commit ids `url`'s `refs` point at, from one advertisement; a ref
  // the remote does not have is absent from the answer.
  absl::StatusOr<std::map<std::string, std::string>> RemoteHeads(
      const std::string& url, const std::vector<std::string>& refs,
      const GitCredentials& credentials) const;

  // Fetches `refspecs` (e.g. "+refs/heads/*:refs/heads/*") of `url` into
  // the repository at `dir`, made first as a bare one (git init --bare) when
  // `dir` does not exist or is empty: a per-project mirror.
  absl::Status Fetch(const std::string& dir, const std::string& url,
                     const std::vector<std::string>& refspecs,
                     const GitCredentials& credentials) const;

  // Verifies the bundle at `bundle_path` against the repository at `dir`
  // (git bundle verify: its prerequisite commits must be there), then
  // fetches its `ref` (a full ref name) into the same ref of `dir`,
  // replacing what was there, objects checked (fetch.fsckObjects). Returns
  // the commit id fetched. FAILED_PRECONDITION when the bundle is not valid
  // here, NOT_FOUND when it has no such ref.
  absl::StatusOr<std::string> FetchBundle(const std::string& dir, const std::string& bundle_path,
                                          const std::string& ref) const;

  // Pushes `refspecs` ("<commit or ref>:refs/heads/<branch>", both sides
  // set) from the repository at `dir` to `url`, never forced: a "+" refspec
  // is INVALID_ARGUMENT; only `options.force_with_lease` lets a ref move
  // other than forward. When the remote's refs are not what the push
  // expects (non-fast-forward, "fetch first", a lease that no longer holds)
  // the answer is ABORTED with git's words: fetch, rebase and push again.
  // Any other refusal (a hook, the host's policy, a protected branch) is
  // FAILED_PRECONDITION; with `options.atomic`, a refused push moved no ref.
  absl::Status PushRefspecs(const std::string& dir, const std::string& url,
                            const std::vector<std::string>& refspecs, const PushOptions& options,
                            const GitCredentials& credentials) const;

  // The full commit id `rev` (a commit id, a ref) names in the repository at
  // `dir`; NOT_FOUND when it names no commit.
  absl::StatusOr<std::string> ResolveCommit(const std::string& dir, const std::string& rev) const;

  // Whether commit `ancestor` is `descendant` or one of its ancestors
  // (git merge-base --is-ancestor) in the repository at `dir`; NOT_FOUND
  // when either is not there.
  absl::StatusOr<bool> IsAncestor(const std::string& dir, const std::string& ancestor,
                                  const std::string& descendant) const;

  // The commits reachable from `to` but not from `from` ("" = all of `to`'s
  // history) in the repository at `dir` whose message has `line` as one
  // whole line (e.g. a trailer "Orchestrator-Run: run_1"), newest first.
  absl::StatusOr<std::vector<std::string>> LogGrep(const std::string& dir, const std::string& from,
                                                   const std::string& to,
                                                   const std::string& line) const;

 private:
  absl::Duration timeout_;
  const std::atomic<bool>* cancel_;
};

}  // namespace orchestrator::git
