#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "orchestrator/engineering/v1/engineering.pb.h"
#include "orchestrator/projects/v1/projects.pb.h"
#include "services/common/pagination/page_token.h"

namespace orchestrator::engineering {

// What the platform itself keeps of a run beyond what users see: where a
// run re-started after a crash resumes from.
struct RunProgress {
  // The developer worker's workspace (the clone and the agent's session).
  std::string workspace_id;
  // The clone's default branch and the commit the change is made on.
  std::string default_branch;
  std::string base_commit_sha;
  // The commit made for the run, recorded before any push, and the time it
  // carries (the same tree, parent and time make the same commit again).
  std::string commit_sha;
  absl::Time commit_time = absl::InfinitePast();
};

struct StoredRun {
  v1::EngineeringRun run;
  RunProgress progress;
};

// Usage summed over some runs.
struct UsageTotals {
  agents::v1::Usage usage;
  int32_t run_count = 0;
};

// Which runs' usage to sum: every field set narrows it.
struct UsageScope {
  std::string run_id;
  std::string project_id;
  std::string owner_id;
  absl::Time since = absl::InfinitePast();
};

// Runs and their usage (PostgreSQL in production, memory in tests).
class RunStore {
 public:
  virtual ~RunStore() = default;

  // The run of `run.job_id()`; created from `run` (QUEUED) when there is
  // none, so a retried request and a job re-run find the same one.
  virtual absl::StatusOr<v1::EngineeringRun> EnsureForJob(const v1::EngineeringRun& run) = 0;
  virtual absl::StatusOr<StoredRun> Get(const std::string& run_id) = 0;
  virtual absl::StatusOr<StoredRun> GetByJob(const std::string& job_id) = 0;
  // Writes the run (status, end time and everything users see) and its
  // progress.
  virtual absl::Status Save(const StoredRun& run) = 0;
  // A project's runs, newest first; `status` UNSPECIFIED means any.
  virtual absl::StatusOr<Page<v1::EngineeringRun>> List(const std::string& project_id,
                                                        v1::EngineeringRunStatus status,
                                                        const PageRequest& page) = 0;
  // The project's newest SUCCEEDED run, if any.
  virtual absl::StatusOr<std::optional<v1::EngineeringRun>> LatestSucceeded(
      const std::string& project_id) = 0;
  // A task's usage so far (cumulative): the larger numbers are kept.
  virtual absl::Status RecordUsage(const v1::EngineeringRun& run, const std::string& task_id,
                                   const agents::v1::Usage& usage, absl::Time now) = 0;
  virtual absl::StatusOr<UsageTotals> SumUsage(const UsageScope& scope) = 0;
};

using RunStorePtr = std::shared_ptr<RunStore>;

// Projects, asked as their owner.
class ProjectDirectory {
 public:
  virtual ~ProjectDirectory() = default;
  virtual absl::StatusOr<projects::v1::Project> Get(const std::string& owner_id,
                                                    const std::string& project_id) = 0;
};

using ProjectDirectoryPtr = std::shared_ptr<ProjectDirectory>;

// What lands a tested commit on the project's remote, from the platform's
// side (no write credential ever enters a sandbox).
struct Landing {
  std::string project_id;
  std::string repository_url;
  // A git bundle holding `commit_sha` on top of `base_commit_sha`.
  std::string bundle_path;
  std::string base_commit_sha;
  std::string commit_sha;
  // The run's branch, "orchestrator/<run id>".
  std::string run_branch;
  // Fast-forwarded to commit_sha with the run's branch, atomically; empty
  // pushes the run's branch only.
  std::string default_branch;
};

class GitRemote {
 public:
  virtual ~GitRemote() = default;
  // The commit `ref` ("refs/heads/main") points at; NOT_FOUND without it.
  virtual absl::StatusOr<std::string> Head(const std::string& repository_url,
                                           const std::string& ref) = 0;
  // Pushes (never forced) and returns once the remote's refs are seen at
  // commit_sha. ABORTED when the default branch moved meanwhile (nothing
  // was pushed: the caller rebases once); FAILED_PRECONDITION when refused.
  virtual absl::Status Land(const Landing& landing) = 0;
  // True when `commit_sha` is on the remote's `branch` (it or an ancestor of
  // its head).
  virtual absl::StatusOr<bool> Contains(const std::string& project_id,
                                        const std::string& repository_url,
                                        const std::string& branch,
                                        const std::string& commit_sha) = 0;
  // A pull request from `head` into `base` on the GitHub host; its URL.
  virtual absl::StatusOr<std::string> OpenPullRequest(const std::string& repository_url,
                                                      const std::string& head,
                                                      const std::string& base,
                                                      const std::string& title,
                                                      const std::string& body) = 0;
};

using GitRemotePtr = std::shared_ptr<GitRemote>;

}  // namespace orchestrator::engineering
