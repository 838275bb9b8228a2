#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"
#include "orchestrator/engineering/v1/engineering.pb.h"
#include "orchestrator/jobs/v1/jobs.pb.h"
#include "services/common/peers/agent_driver.h"
#include "services/engineering/domain/ports.h"
#include "services/jobs/domain/job_hooks.h"
#include "services/jobs/domain/job_types.h"

namespace orchestrator::engineering {

// The kind of job TriggerEngineering enqueues; one runs at a time per
// project (they share a concurrency key), later ones queue.
inline constexpr char kEngineeringJobKind[] = "engineering";
std::string EngineeringConcurrencyKey(const std::string& project_id);

struct EngineeringDefaults {
  agents::v1::AgentType agent_type = agents::v1::AGENT_TYPE_SCRIPTED;
  int max_iterations = 3;
  // A run's token budget per owner (input plus output tokens within
  // budget_window); 0 means none.
  int64_t token_budget = 0;
  absl::Duration budget_window = absl::Hours(24 * 30);
};

// What TriggerEngineering asked for.
struct EngineeringRequest {
  std::string owner_id;
  std::string project_id;
  std::string instructions;
  agents::v1::AgentType agent_type = agents::v1::AGENT_TYPE_UNSPECIFIED;
  int max_iterations = 0;
  std::string request_id;
};

// INVALID_ARGUMENT naming the field for a request no run could take.
absl::Status ValidateRequest(const EngineeringRequest& request);
// FAILED_PRECONDITION saying what to fix when the project cannot be worked
// on: no repository, or no test command to check a change with.
absl::Status CheckProjectRunnable(const projects::v1::Project& project);
// FAILED_PRECONDITION when the owner has used their token budget.
absl::Status CheckBudget(RunStore& store, const std::string& owner_id,
                         const EngineeringDefaults& defaults, absl::Time now);

// The job for a request (its params carry everything the run needs, so a
// job whose run row was never written still runs), and the run it makes.
jobs::EnqueueRequest EngineeringJob(const EngineeringRequest& request,
                                    const EngineeringDefaults& defaults, const std::string& run_id);
v1::EngineeringRun QueuedRunOf(const jobs::v1::Job& job);

struct EngineerOptions {
  EngineeringDefaults defaults;
  // Longest an agent's turn may take, and the project's tests.
  absl::Duration task_timeout = absl::Minutes(30);
  absl::Duration test_timeout = absl::Minutes(10);
  absl::Duration worker_ready_timeout = absl::Minutes(2);
  // Where bundles of tested commits wait for their push.
  std::string work_dir;
  std::function<absl::Time()> clock = &absl::Now;
};

// Runs engineering jobs: a developer worker gets the project's repository
// and the task; after each agent turn the platform runs the project's tests
// itself in the same sandbox; failures go back to the agent, at most
// max_iterations times; a change that passed is committed, pushed to
// orchestrator/<run> and the default branch (or a pull request), and the
// push verified. A run that never passes fails with "needs a human" and its
// last attempt on its branch. A job re-run after a crash resumes from what
// the run recorded, and never lands a second commit.
class Engineer {
 public:
  Engineer(RunStorePtr runs, ProjectDirectoryPtr projects, AgentDriverPtr agents, GitRemotePtr git,
           EngineerOptions options)
      : runs_(std::move(runs)),
        projects_(std::move(projects)),
        agents_(std::move(agents)),
        git_(std::move(git)),
        options_(std::move(options)) {}

  // The job's handler: its result is {run_id, commit_sha, branch}.
  absl::StatusOr<google::protobuf::Struct> Run(const jobs::v1::Job& job,
                                               const jobs::JobHooks& hooks);

 private:
  RunStorePtr runs_;
  ProjectDirectoryPtr projects_;
  AgentDriverPtr agents_;
  GitRemotePtr git_;
  EngineerOptions options_;
};

}  // namespace orchestrator::engineering
