#pragma once

#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "orchestrator/scheduler/v1/scheduler.pb.h"
#include "services/common/auth/principal.h"
#include "services/common/component/periodic_task.h"
#include "services/scheduler/domain/schedule.h"
#include "services/scheduler/domain/task_store.h"

namespace orchestrator::scheduler {

// The parameter of every run's job: the task it runs, and (for a
// scheduled run) the time it was due, RFC 3339.
inline constexpr char kTaskIdParam[] = "task_id";
inline constexpr char kScheduledTimeParam[] = "scheduled_time";

struct SchedulerOptions {
  // This replica, as the lease names its holder (unique per process).
  std::string replica;
  // A leader that has not renewed its lease for this long is replaced.
  absl::Duration lease_ttl = absl::Seconds(15);
  // How often the leader renews it (well within the TTL).
  absl::Duration renew_every = absl::Seconds(5);
  // How often a replica that does not lead tries to (the failover's
  // granularity: a failover takes at most lease_ttl + this).
  absl::Duration follower_poll = absl::Seconds(1);
  std::function<absl::Time()> clock = [] { return absl::Now(); };
  // Runs are kept this long (as the jobs they ran as); the leader deletes
  // older ones hourly.
  absl::Duration run_retention = absl::Hours(24 * 7);
};

// The platform's periodic tasks: their definitions (declared by the
// components, in code) with their state (in the database), and the loop
// that, on the replica holding the lease, starts each due run as a job.
// At most one run per task and due time, however many replicas run.
class Scheduler {
 public:
  // INVALID_ARGUMENT when a definition is malformed (a bad cron, a
  // duplicate id): a programming error caught at start-up.
  static absl::StatusOr<std::unique_ptr<Scheduler>> Make(TaskStorePtr store,
                                                         std::vector<PeriodicTask> tasks,
                                                         SchedulerOptions options);
  ~Scheduler();  // stops the loop and gives the lease up

  // Records the tasks that have none yet (again: a no-op); the API finds
  // every task once this succeeded.
  absl::Status EnsureTasks();
  // Runs the loop: records the tasks that have none yet (retried until it
  // can), then competes for the lease.
  void Start();
  // Stops the loop; the lease goes at once to another replica.
  void Stop();
  bool leading() const;

  absl::StatusOr<std::vector<v1::Task>> ListTasks() const;
  absl::StatusOr<v1::Task> GetTask(const std::string& task_id) const;
  // A manual run, as a job owned by the platform; idempotent per caller
  // and request_id.
  absl::StatusOr<jobs::v1::Job> RunNow(const Principal& caller, const std::string& task_id,
                                       const std::string& request_id);
  absl::StatusOr<v1::Task> Pause(const std::string& task_id, const std::string& note);
  absl::StatusOr<v1::Task> Resume(const std::string& task_id);
  absl::StatusOr<v1::Task> UpdateSchedule(const v1::UpdateTaskScheduleRequest& request);
  absl::StatusOr<v1::ListTaskRunsResponse> ListRuns(const v1::ListTaskRunsRequest& request) const;

 private:
  struct Effective {
    Schedule schedule;
    bool allow_overlap;
  };
  Scheduler(TaskStorePtr store, std::map<std::string, PeriodicTask> tasks,
            std::map<std::string, Schedule> defaults, SchedulerOptions options);

  const PeriodicTask* Find(const std::string& task_id) const;
  absl::StatusOr<Effective> EffectiveOf(const TaskRecord& record) const;
  absl::StatusOr<v1::Task> ToProto(const TaskRecord& record, bool with_runs) const;
  absl::StatusOr<std::vector<v1::TaskRun>> RunsToProto(const std::vector<RunRecord>& runs) const;
  jobs::EnqueueRequest JobFor(const PeriodicTask& task, bool allow_overlap) const;

  // `ensured`: the tasks' records are written already.
  void Loop(bool ensured);
  // One pass as leader: every due task ticked; returns when the next is due.
  absl::Time TickDue(absl::Time now);
  void Wake();

  TaskStorePtr store_;
  const std::map<std::string, PeriodicTask> tasks_;
  const std::map<std::string, Schedule> defaults_;
  SchedulerOptions options_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  bool leading_ ABSL_GUARDED_BY(mu_) = false;
  std::thread loop_;
};

}  // namespace orchestrator::scheduler
