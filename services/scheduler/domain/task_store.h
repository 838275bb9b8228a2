#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "orchestrator/scheduler/v1/scheduler.pb.h"
#include "services/common/pagination/page_token.h"
#include "services/jobs/domain/job_types.h"

namespace orchestrator::scheduler {

// A task's state as kept in the database (its definition is in code).
struct TaskRecord {
  std::string id;
  v1::TaskState state = v1::TASK_STATE_ACTIVE;
  std::string pause_note;
  // An admin's change of the schedule (UpdateTaskSchedule); empty/zero: none.
  std::string cron_override;
  absl::Duration interval_override = absl::ZeroDuration();
  v1::OverlapPolicy overlap_override = v1::OVERLAP_POLICY_UNSPECIFIED;
  // The first due time not handled yet, and the schedule it was computed by.
  absl::Time next_run_time = absl::InfiniteFuture();
  std::string schedule_key;
  int64_t skipped_count = 0;
  int64_t missed_count = 0;
  std::string last_job_id;  // the latest run's job, "" before the first
  absl::Time update_time = absl::InfinitePast();
};

// One run as kept (the job's state is the job engine's).
struct RunRecord {
  std::string id;
  std::string task_id;
  std::string job_id;  // "" when skipped
  v1::RunTrigger trigger = v1::RUN_TRIGGER_SCHEDULE;
  absl::Time scheduled_time = absl::InfinitePast();  // manual runs: none
  absl::Time create_time = absl::InfinitePast();
  bool skipped = false;
  std::string requested_by;
};

// What the leader does with a due task, decided from its record.
struct TickDecision {
  absl::Time scheduled_time;  // the due time being handled (the run's)
  int64_t missed = 0;         // earlier due times not made up
  absl::Time next_run_time;   // the first due time after it
  bool skip = false;          // the previous run has not ended: count, no job
  jobs::EnqueueRequest job;   // otherwise: the run's job
  std::string run_id;
};

// Decides, inside the tick's transaction, from the task's record and
// whether its previous run's job is still QUEUED or RUNNING; nullopt: not
// due (paused, or already handled by another leader).
using TickDecider =
    std::function<std::optional<TickDecision>(const TaskRecord& task, bool previous_running)>;

// The scheduler's state in PostgreSQL. Every change that starts a run
// enqueues its job in the same transaction.
class TaskStore {
 public:
  virtual ~TaskStore() = default;

  // Inserts the tasks that have no record yet (ACTIVE); keeps the others.
  virtual absl::Status EnsureTasks(const std::vector<TaskRecord>& tasks) = 0;

  // Takes or renews the leader lease for `holder` for `ttl`: true when
  // `holder` leads. A lease whose holder did not renew it in time goes to
  // the first who asks. Lease times are the database's clock, so replicas
  // whose clocks disagree still agree on who leads.
  virtual absl::StatusOr<bool> Lead(const std::string& holder, absl::Duration ttl) = 0;
  // Gives the lease up (a graceful stop): another replica leads at once.
  virtual absl::Status Resign(const std::string& holder) = 0;

  virtual absl::StatusOr<std::vector<TaskRecord>> ListTasks() = 0;
  // NOT_FOUND when the task has no record.
  virtual absl::StatusOr<TaskRecord> GetTask(const std::string& task_id) = 0;

  // In one transaction, only while `holder` holds an unexpired lease (else
  // FAILED_PRECONDITION): locks the task, decides, and records the run
  // (skipped, or with its job enqueued) and the task's next due time.
  // Returns the run, or nullopt when `decide` found nothing due.
  virtual absl::StatusOr<std::optional<RunRecord>> Tick(const std::string& holder,
                                                        const std::string& task_id, absl::Time now,
                                                        const TickDecider& decide) = 0;

  // A manual run: its job enqueued (idempotent by the job's request_id)
  // and recorded as the task's latest. Returns the run (the first one's,
  // for a retried request).
  virtual absl::StatusOr<RunRecord> RunNow(const std::string& task_id, const std::string& run_id,
                                           const std::string& requested_by,
                                           const jobs::EnqueueRequest& job, absl::Time now) = 0;

  // Changes a task atomically: `change` sees the task's record locked (no
  // tick, pause or other change in between) and edits it; its state, note,
  // overrides and next due time are saved as it left them. An error from
  // `change` changes nothing.
  using TaskChange = std::function<absl::Status(TaskRecord& task)>;
  virtual absl::StatusOr<TaskRecord> Update(const std::string& task_id, const TaskChange& change,
                                            absl::Time now) = 0;

  // Newest first: page_size + 1 runs (one more tells there is a next
  // page), after the page's keys (create time in Unix µs, id).
  virtual absl::StatusOr<std::vector<RunRecord>> ListRuns(const std::string& task_id,
                                                          const PageRequest& page) = 0;
  // Deletes runs recorded before `cutoff` (their jobs are pruned by then);
  // returns how many.
  virtual absl::StatusOr<int64_t> PruneRuns(absl::Time cutoff) = 0;
  // The jobs of these runs that still exist (a pruned job is gone).
  virtual absl::StatusOr<std::vector<jobs::v1::Job>> JobsOf(
      const std::vector<std::string>& job_ids) = 0;
};

using TaskStorePtr = std::shared_ptr<TaskStore>;

}  // namespace orchestrator::scheduler
