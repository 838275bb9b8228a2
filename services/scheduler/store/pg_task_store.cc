#include "services/scheduler/store/pg_task_store.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "services/common/db/sql_time.h"

namespace orchestrator::scheduler {
namespace {

#define TS(n) ORCHESTRATOR_SQL_TIME(n)
#define MICROS(col) "(extract(epoch FROM " col ") * 1000000)::bigint"
#define TASK_COLUMNS \
  "id, state, pause_note, cron_override, interval_override_seconds, overlap_override, " \
  MICROS("next_run_time") ", schedule_key, skipped_count, missed_count, last_job_id, "   \
  MICROS("update_time")
#define RUN_COLUMNS \
  "id, task_id, job_id, run_trigger, " MICROS("scheduled_time") ", skipped, " \
  "requested_by, " MICROS("create_time")

// The one lease the scheduler's replicas share.
constexpr char kLeaseName[] = "scheduler";

constexpr db::Statement kEnsure{
    "scheduler_task_ensure",
    "INSERT INTO scheduler.tasks (id, next_run_time, schedule_key) VALUES ($1, " TS(2) ", $3) "
    "ON CONFLICT (id) DO NOTHING"};
// Takes the lease when free or lapsed, renews it for its holder; the term
// counts changes of holder.
constexpr db::Statement kLead{
    "scheduler_lead",
    "INSERT INTO scheduler.leases AS l (name, holder, term, acquire_time, expire_time) "
    "VALUES ($1, $2, 1, clock_timestamp(), clock_timestamp() + $3::bigint * interval "
    "'1 microsecond') ON CONFLICT (name) DO UPDATE SET "
    "holder = EXCLUDED.holder, expire_time = EXCLUDED.expire_time, "
    "term = l.term + CASE WHEN l.holder = EXCLUDED.holder THEN 0 ELSE 1 END, "
    "acquire_time = CASE WHEN l.holder = EXCLUDED.holder THEN l.acquire_time "
    "ELSE EXCLUDED.acquire_time END "
    "WHERE l.holder = EXCLUDED.holder OR l.expire_time <= clock_timestamp() RETURNING term"};
constexpr db::Statement kResign{
    "scheduler_resign",
    "UPDATE scheduler.leases SET expire_time = 'epoch' WHERE name = $1 AND holder = $2"};
// Inside a tick: the lease still ours (held until commit, so nobody takes
// it over in between).
constexpr db::Statement kHoldLease{"scheduler_hold_lease",
                                   "SELECT 1 FROM scheduler.leases WHERE name = $1 AND holder = $2 "
                                   "AND expire_time > clock_timestamp() FOR SHARE"};
constexpr db::Statement kList{"scheduler_task_list",
                              "SELECT " TASK_COLUMNS " FROM scheduler.tasks ORDER BY id"};
constexpr db::Statement kGet{"scheduler_task_get",
                             "SELECT " TASK_COLUMNS " FROM scheduler.tasks WHERE id = $1"};
constexpr db::Statement kLock{
    "scheduler_task_lock", "SELECT " TASK_COLUMNS " FROM scheduler.tasks WHERE id = $1 FOR UPDATE"};
constexpr db::Statement kUpdate{
    "scheduler_task_update",
    "UPDATE scheduler.tasks SET state = $2::smallint, pause_note = $3, cron_override = $4, "
    "interval_override_seconds = $5::bigint, overlap_override = $6::smallint, "
    "next_run_time = " TS(7) ", schedule_key = $8, update_time = " TS(
        9) " WHERE id = $1 RETURNING " TASK_COLUMNS};
constexpr db::Statement kAdvance{
    "scheduler_task_advance",
    "UPDATE scheduler.tasks SET next_run_time = " TS(2)
    ", missed_count = missed_count + $3::bigint, "
    "skipped_count = skipped_count + $4::bigint, "
    "last_job_id = CASE WHEN $5 = '' THEN last_job_id ELSE $5 END, update_time = " TS(6)
    " WHERE id = $1"};
constexpr db::Statement kSetLastJob{
    "scheduler_task_last_job",
    "UPDATE scheduler.tasks SET last_job_id = $2, update_time = " TS(3) " WHERE id = $1"};
constexpr db::Statement kInsertRun{
    "scheduler_run_insert",
    "INSERT INTO scheduler.runs (id, task_id, job_id, run_trigger, scheduled_time, skipped, "
    "requested_by, create_time) VALUES ($1, $2, $3, $4::smallint, "
    "CASE WHEN $5::bigint IS NULL THEN NULL ELSE " TS(5) " END, $6::boolean, $7, " TS(
        8) ") ON CONFLICT DO NOTHING RETURNING " RUN_COLUMNS};
constexpr db::Statement kRunByJob{"scheduler_run_by_job",
                                  "SELECT " RUN_COLUMNS " FROM scheduler.runs WHERE job_id = $1"};
constexpr db::Statement kListRuns{
    "scheduler_run_list",
    "SELECT " RUN_COLUMNS
    " FROM scheduler.runs WHERE task_id = $1 "
    "AND ($2::bigint IS NULL OR (create_time, id) < (" TS(2) ", $3)) "
    "ORDER BY create_time DESC, id DESC LIMIT $4"};

constexpr db::Statement kPruneRuns{"scheduler_run_prune",
                                   "DELETE FROM scheduler.runs WHERE create_time < " TS(1)};

using db::Micros;

absl::Time TimeAt(const db::Result& r, int row, int col) {
  return r.IsNull(row, col) ? absl::InfinitePast() : absl::FromUnixMicros(r.GetInt64(row, col));
}

TaskRecord TaskFromRow(const db::Result& r, int row) {
  TaskRecord t;
  t.id = std::string(r.Get(row, 0));
  t.state = static_cast<v1::TaskState>(r.GetInt64(row, 1));
  t.pause_note = std::string(r.Get(row, 2));
  t.cron_override = std::string(r.Get(row, 3));
  t.interval_override = absl::Seconds(r.GetInt64(row, 4));
  t.overlap_override = static_cast<v1::OverlapPolicy>(r.GetInt64(row, 5));
  t.next_run_time = TimeAt(r, row, 6);
  t.schedule_key = std::string(r.Get(row, 7));
  t.skipped_count = r.GetInt64(row, 8);
  t.missed_count = r.GetInt64(row, 9);
  t.last_job_id = std::string(r.Get(row, 10));
  t.update_time = TimeAt(r, row, 11);
  return t;
}

RunRecord RunFromRow(const db::Result& r, int row) {
  RunRecord run;
  run.id = std::string(r.Get(row, 0));
  run.task_id = std::string(r.Get(row, 1));
  run.job_id = std::string(r.Get(row, 2));
  run.trigger = static_cast<v1::RunTrigger>(r.GetInt64(row, 3));
  run.scheduled_time = TimeAt(r, row, 4);
  run.skipped = r.GetBool(row, 5);
  run.requested_by = std::string(r.Get(row, 6));
  run.create_time = TimeAt(r, row, 7);
  return run;
}

absl::Status TaskNotFound(const std::string& task_id) {
  return absl::NotFoundError(absl::StrCat("task '", task_id, "' not found"));
}

db::Params RunParams(const RunRecord& run, absl::Time now) {
  std::optional<std::string> scheduled;
  if (run.scheduled_time != absl::InfinitePast()) scheduled = Micros(run.scheduled_time);
  return {run.id,           run.task_id,
          run.job_id,       std::to_string(run.trigger),
          scheduled,        run.skipped ? "true" : "false",
          run.requested_by, Micros(now)};
}

}  // namespace

absl::Status PgTaskStore::EnsureTasks(const std::vector<TaskRecord>& tasks) {
  for (const TaskRecord& t : tasks) {
    auto r = pool_->Exec(kEnsure, {t.id, Micros(t.next_run_time), t.schedule_key});
    if (!r.ok()) return r.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> PgTaskStore::Lead(const std::string& holder, absl::Duration ttl) {
  auto r = pool_->Exec(kLead, {kLeaseName, holder, std::to_string(absl::ToInt64Microseconds(ttl))});
  if (!r.ok()) return r.status();
  return r->rows() == 1;
}

absl::Status PgTaskStore::Resign(const std::string& holder) {
  return pool_->Exec(kResign, {kLeaseName, holder}).status();
}

absl::StatusOr<std::vector<TaskRecord>> PgTaskStore::ListTasks() {
  auto r = pool_->Exec(kList);
  if (!r.ok()) return r.status();
  std::vector<TaskRecord> out;
  for (int i = 0; i < r->rows(); ++i) out.push_back(TaskFromRow(*r, i));
  return out;
}

absl::StatusOr<TaskRecord> PgTaskStore::GetTask(const std::string& task_id) {
  auto r = pool_->Exec(kGet, {task_id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return TaskNotFound(task_id);
  return TaskFromRow(*r, 0);
}

absl::StatusOr<std::optional<RunRecord>> PgTaskStore::Tick(const std::string& holder,
                                                           const std::string& task_id,
                                                           absl::Time now,
                                                           const TickDecider& decide) {
  std::optional<RunRecord> out;
  absl::Status s = pool_->InTransaction([&](db::Transaction& tx) -> absl::Status {
    auto lease = tx.Exec(kHoldLease, {kLeaseName, holder});
    if (!lease.ok()) return lease.status();
    if (lease->rows() == 0) {
      return absl::FailedPreconditionError("this replica no longer holds the scheduler's lease");
    }
    auto locked = tx.Exec(kLock, {task_id});
    if (!locked.ok()) return locked.status();
    if (locked->rows() == 0) return TaskNotFound(task_id);
    const TaskRecord task = TaskFromRow(*locked, 0);
    bool previous_running = false;
    if (!task.last_job_id.empty()) {
      auto previous = jobs_->Find(tx, task.last_job_id);
      if (!previous.ok()) return previous.status();
      previous_running = previous->has_value() && !jobs::IsTerminal((*previous)->state());
    }
    std::optional<TickDecision> decision = decide(task, previous_running);
    if (!decision) return absl::OkStatus();
    RunRecord run;
    run.id = decision->run_id;
    run.task_id = task_id;
    run.trigger = v1::RUN_TRIGGER_SCHEDULE;
    run.scheduled_time = decision->scheduled_time;
    run.skipped = decision->skip;
    if (!decision->skip) {
      auto job = jobs_->Enqueue(tx, decision->job, now);
      if (!job.ok()) return job.status();
      run.job_id = job->id();
    }
    auto inserted = tx.Exec(kInsertRun, RunParams(run, now));
    if (!inserted.ok()) return inserted.status();
    if (inserted->rows() == 0) {
      // Another leader recorded this due time: the unique index is the
      // last guard against running a tick twice.
      return absl::AbortedError(absl::StrCat("task '", task_id, "' already ran its run due at ",
                                             absl::FormatTime(decision->scheduled_time)));
    }
    auto advanced = tx.Exec(
        kAdvance, {task_id, Micros(decision->next_run_time), std::to_string(decision->missed),
                   decision->skip ? "1" : "0", run.job_id, Micros(now)});
    if (!advanced.ok()) return advanced.status();
    out = RunFromRow(*inserted, 0);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<RunRecord> PgTaskStore::RunNow(const std::string& task_id, const std::string& run_id,
                                              const std::string& requested_by,
                                              const jobs::EnqueueRequest& job, absl::Time now) {
  std::optional<RunRecord> out;
  absl::Status s = pool_->InTransaction([&](db::Transaction& tx) -> absl::Status {
    auto locked = tx.Exec(kLock, {task_id});
    if (!locked.ok()) return locked.status();
    if (locked->rows() == 0) return TaskNotFound(task_id);
    auto enqueued = jobs_->Enqueue(tx, job, now);
    if (!enqueued.ok()) return enqueued.status();
    RunRecord run;
    run.id = run_id;
    run.task_id = task_id;
    run.job_id = enqueued->id();
    run.trigger = v1::RUN_TRIGGER_MANUAL;
    run.requested_by = requested_by;
    auto inserted = tx.Exec(kInsertRun, RunParams(run, now));
    if (!inserted.ok()) return inserted.status();
    if (inserted->rows() == 1) {
      auto last = tx.Exec(kSetLastJob, {task_id, run.job_id, Micros(now)});
      if (!last.ok()) return last.status();
      out = RunFromRow(*inserted, 0);
      return absl::OkStatus();
    }
    // A retried request: its job came back; so does its run.
    auto earlier = tx.Exec(kRunByJob, {run.job_id});
    if (!earlier.ok()) return earlier.status();
    if (earlier->rows() == 0) return absl::AbortedError("concurrent RunTaskNow; retry");
    out = RunFromRow(*earlier, 0);
    if (out->task_id != task_id) {
      return absl::AlreadyExistsError(
          absl::StrCat("request_id: already used to run task '", out->task_id, "'"));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return *std::move(out);
}

absl::StatusOr<TaskRecord> PgTaskStore::Update(const std::string& task_id, const TaskChange& change,
                                               absl::Time now) {
  std::optional<TaskRecord> out;
  absl::Status s = pool_->InTransaction([&](db::Transaction& tx) -> absl::Status {
    auto locked = tx.Exec(kLock, {task_id});
    if (!locked.ok()) return locked.status();
    if (locked->rows() == 0) return TaskNotFound(task_id);
    TaskRecord t = TaskFromRow(*locked, 0);
    if (auto changed = change(t); !changed.ok()) return changed;
    auto r = tx.Exec(kUpdate, {task_id, std::to_string(t.state), t.pause_note, t.cron_override,
                               std::to_string(absl::ToInt64Seconds(t.interval_override)),
                               std::to_string(t.overlap_override), Micros(t.next_run_time),
                               t.schedule_key, Micros(now)});
    if (!r.ok()) return r.status();
    out = TaskFromRow(*r, 0);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return *std::move(out);
}

absl::StatusOr<std::vector<RunRecord>> PgTaskStore::ListRuns(const std::string& task_id,
                                                             const PageRequest& page) {
  const bool resume = page.after.size() == 2;
  auto r = pool_->Exec(kListRuns,
                       {task_id, resume ? std::optional<std::string>(page.after[0]) : std::nullopt,
                        resume ? page.after[1] : "", std::to_string(page.page_size + 1)});
  if (!r.ok()) return r.status();
  std::vector<RunRecord> out;
  for (int i = 0; i < r->rows(); ++i) out.push_back(RunFromRow(*r, i));
  return out;
}

absl::StatusOr<int64_t> PgTaskStore::PruneRuns(absl::Time cutoff) {
  auto r = pool_->Exec(kPruneRuns, {Micros(cutoff)});
  if (!r.ok()) return r.status();
  return r->affected();
}

}  // namespace orchestrator::scheduler
