#include "services/scheduler/domain/scheduler.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "services/common/crypto/secret_box.h"

namespace orchestrator::scheduler {
namespace {

using google::protobuf::util::TimeUtil;

constexpr int kUpcoming = 3;
constexpr int32_t kUpkeepPriority = 10;
constexpr int kRecent = 5;
// A failed tick (the database away) is retried after this.
constexpr absl::Duration kRetryAfterError = absl::Seconds(1);
// How often the leader deletes runs past their retention.
constexpr absl::Duration kPruneEvery = absl::Hours(1);

google::protobuf::Timestamp ToProtoTime(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

bool IsSet(absl::Time t) { return t != absl::InfinitePast() && t != absl::InfiniteFuture(); }

absl::Status TaskNotFound(const std::string& task_id) {
  return absl::NotFoundError(absl::StrCat("task '", task_id, "' not found (scheduler tasks)"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Make(TaskStorePtr store,
                                                           std::vector<PeriodicTask> tasks,
                                                           SchedulerOptions options) {
  std::map<std::string, PeriodicTask> by_id;
  std::map<std::string, Schedule> defaults;
  for (PeriodicTask& task : tasks) {
    const std::string field = absl::StrCat("periodic task '", task.id, "'");
    if (task.id.empty() || task.job_kind.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": needs an id and a job kind"));
    }
    if (task.cron.empty() == (task.interval == absl::ZeroDuration())) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": needs a cron or an interval"));
    }
    auto schedule = task.cron.empty() ? Schedule::Every(task.interval, field)
                                      : Schedule::Cron(task.cron, field);
    if (!schedule.ok()) return schedule.status();
    if (!by_id.emplace(task.id, task).second) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": declared twice"));
    }
    defaults.emplace(task.id, *std::move(schedule));
  }
  if (options.replica.empty()) options.replica = NewId("scheduler-");
  return std::unique_ptr<Scheduler>(
      new Scheduler(std::move(store), std::move(by_id), std::move(defaults), std::move(options)));
}

Scheduler::Scheduler(TaskStorePtr store, std::map<std::string, PeriodicTask> tasks,
                     std::map<std::string, Schedule> defaults, SchedulerOptions options)
    : store_(std::move(store)),
      tasks_(std::move(tasks)),
      defaults_(std::move(defaults)),
      options_(std::move(options)) {}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Start() {
  // At once when the database answers, so the API finds every task from
  // the start; else the loop tries again.
  absl::Status ensured = EnsureTasks();
  if (!ensured.ok()) {
    spdlog::warn("scheduler: recording the periodic tasks: {}", ensured.ToString());
  }
  loop_ = std::thread([this, done = ensured.ok()] { Loop(done); });
}

absl::Status Scheduler::EnsureTasks() {
  const absl::Time now = options_.clock();
  std::vector<TaskRecord> records;
  for (const auto& [id, schedule] : defaults_) {
    TaskRecord r;
    r.id = id;
    r.next_run_time = schedule.NextAfter(now);
    r.schedule_key = schedule.Key();
    records.push_back(std::move(r));
  }
  return store_->EnsureTasks(records);
}

void Scheduler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (loop_.joinable()) loop_.join();
}

bool Scheduler::leading() const {
  absl::MutexLock lock(&mu_);
  return leading_;
}

void Scheduler::Wake() {
  absl::MutexLock lock(&mu_);
  woken_ = true;
}

const PeriodicTask* Scheduler::Find(const std::string& task_id) const {
  auto it = tasks_.find(task_id);
  return it == tasks_.end() ? nullptr : &it->second;
}

absl::StatusOr<Scheduler::Effective> Scheduler::EffectiveOf(const TaskRecord& record) const {
  const PeriodicTask* task = Find(record.id);
  if (task == nullptr) return TaskNotFound(record.id);
  Effective e{.schedule = defaults_.at(record.id), .allow_overlap = task->allow_overlap};
  if (!record.cron_override.empty()) {
    auto s = Schedule::Cron(record.cron_override, "cron");
    if (!s.ok()) return s.status();
    e.schedule = *std::move(s);
  } else if (record.interval_override > absl::ZeroDuration()) {
    auto s = Schedule::Every(record.interval_override, "interval");
    if (!s.ok()) return s.status();
    e.schedule = *std::move(s);
  }
  if (record.overlap_override != v1::OVERLAP_POLICY_UNSPECIFIED) {
    e.allow_overlap = record.overlap_override == v1::OVERLAP_POLICY_ALLOW_ALL;
  }
  return e;
}

jobs::EnqueueRequest Scheduler::JobFor(const PeriodicTask& task, bool allow_overlap) const {
  jobs::EnqueueRequest job;
  job.kind = task.job_kind;
  job.owner_id = "";  // the platform's
  job.max_attempts = task.max_attempts;
  // Upkeep goes ahead of users' jobs queued on the same engine (a release's
  // watch must not wait behind a queue of deploys).
  job.priority = kUpkeepPriority;
  (*job.params.mutable_fields())[kTaskIdParam].set_string_value(task.id);
  job.origin.set_kind(jobs::v1::JOB_ORIGIN_KIND_SCHEDULER_TASK);
  job.origin.set_actor(jobs::kPlatformActor);
  job.origin.set_task_id(task.id);
  // Runs of a task that may not overlap run one at a time, a manual one too.
  if (!allow_overlap) job.concurrency_key = absl::StrCat("scheduler:", task.id);
  return job;
}

// ---- The loop ---------------------------------------------------------

void Scheduler::Loop(bool ensured) {
  bool was_leading = false;
  absl::Time pruned = absl::InfinitePast();
  while (true) {
    const absl::Time now = options_.clock();
    // The tasks' records first (again after a failure: the database may be
    // away at start-up); only then may this replica lead.
    if (!ensured) {
      if (auto s = EnsureTasks(); !s.ok()) {
        spdlog::warn("scheduler: recording the periodic tasks: {}", s.ToString());
      } else {
        ensured = true;
      }
    }
    absl::StatusOr<bool> leads =
        ensured ? store_->Lead(options_.replica, options_.lease_ttl) : absl::StatusOr<bool>(false);
    if (!leads.ok()) {
      spdlog::warn("scheduler: the lease: {}", leads.status().ToString());
      leads = false;
    }
    if (*leads != was_leading) {
      spdlog::info("scheduler: replica {} {}", options_.replica,
                   *leads ? "leads: it starts the periodic tasks' runs" : "no longer leads");
      was_leading = *leads;
    }
    {
      absl::MutexLock lock(&mu_);
      leading_ = *leads;
    }
    absl::Time wake = now + options_.follower_poll;
    if (*leads) {
      // Renew in time, and never tick on a lease that may have lapsed.
      const absl::Time renew_by = now + options_.renew_every;
      wake = std::min(TickDue(now), renew_by);
      if (now - pruned > kPruneEvery) {
        pruned = now;
        auto deleted = store_->PruneRuns(now - options_.run_retention);
        if (!deleted.ok()) {
          spdlog::warn("scheduler: pruning runs: {}", deleted.status().ToString());
        } else if (*deleted > 0) {
          spdlog::info("scheduler: deleted {} runs older than {}", *deleted,
                       absl::FormatDuration(options_.run_retention));
        }
      }
    }
    absl::MutexLock lock(&mu_);
    auto stop_or_woken = [this]()
                             ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || woken_; };
    mu_.AwaitWithDeadline(absl::Condition(&stop_or_woken), wake);
    woken_ = false;
    if (stopping_) break;
  }
  if (was_leading) {
    if (auto s = store_->Resign(options_.replica); !s.ok()) {
      spdlog::warn("scheduler: giving the lease up: {}", s.ToString());
    }
  }
}

absl::Time Scheduler::TickDue(absl::Time now) {
  absl::Time next_wake = absl::InfiniteFuture();
  auto records = store_->ListTasks();
  if (!records.ok()) {
    spdlog::warn("scheduler: reading the tasks: {}", records.status().ToString());
    return now + kRetryAfterError;
  }
  for (const TaskRecord& record : *records) {
    auto effective = EffectiveOf(record);
    if (!effective.ok()) continue;  // a task no component declares (any more)
    if (record.state != v1::TASK_STATE_ACTIVE) continue;
    // A changed schedule (a new default in code) starts from now.
    if (record.schedule_key != effective->schedule.Key()) {
      auto changed = store_->Update(
          record.id,
          [&](TaskRecord& t) {
            auto now_effective = EffectiveOf(t);
            if (!now_effective.ok()) return now_effective.status();
            if (t.schedule_key != now_effective->schedule.Key()) {
              t.schedule_key = now_effective->schedule.Key();
              t.next_run_time = now_effective->schedule.NextAfter(now);
            }
            return absl::OkStatus();
          },
          now);
      if (!changed.ok()) {
        spdlog::warn("scheduler: rescheduling {}: {}", record.id, changed.status().ToString());
        next_wake = std::min(next_wake, now + kRetryAfterError);
      } else {
        next_wake = std::min(next_wake, changed->next_run_time);
      }
      continue;
    }
    if (record.next_run_time > now) {
      next_wake = std::min(next_wake, record.next_run_time);
      continue;
    }
    const PeriodicTask& task = tasks_.at(record.id);
    const std::string run_id = NewId("run-");
    auto decide = [&](const TaskRecord& locked,
                      bool previous_running) -> std::optional<TickDecision> {
      if (locked.state != v1::TASK_STATE_ACTIVE || locked.next_run_time > now ||
          locked.schedule_key != effective->schedule.Key()) {
        return std::nullopt;  // paused, rescheduled or handled meanwhile
      }
      const Schedule& schedule = effective->schedule;
      TickDecision d;
      d.scheduled_time = schedule.LatestAtOrBefore(now, locked.next_run_time);
      if (d.scheduled_time == absl::InfinitePast()) return std::nullopt;
      d.missed = schedule.CountIn(locked.next_run_time, d.scheduled_time);
      d.next_run_time = schedule.NextAfter(now);
      d.skip = previous_running && !effective->allow_overlap;
      d.run_id = run_id;
      d.job = JobFor(task, effective->allow_overlap);
      d.job.request_id =
          absl::StrCat("scheduler:", task.id, ":", absl::ToUnixMicros(d.scheduled_time));
      (*d.job.params.mutable_fields())[kScheduledTimeParam].set_string_value(
          absl::FormatTime(absl::RFC3339_full, d.scheduled_time, absl::UTCTimeZone()));
      return d;
    };
    auto run = store_->Tick(options_.replica, record.id, now, decide);
    if (!run.ok()) {
      spdlog::warn("scheduler: task {}: {}", record.id, run.status().ToString());
      if (run.status().code() == absl::StatusCode::kFailedPrecondition) return now;  // lease lost
      next_wake = std::min(next_wake, now + kRetryAfterError);
      continue;
    }
    if (run->has_value() && (*run)->skipped) {
      spdlog::info("scheduler: task {}: run due at {} skipped: the previous one has not ended",
                   record.id, absl::FormatTime((*run)->scheduled_time));
    }
    next_wake = std::min(next_wake, effective->schedule.NextAfter(now));
  }
  return next_wake;
}

// ---- Reads and admin changes --------------------------------------------

absl::StatusOr<std::vector<v1::TaskRun>> Scheduler::RunsToProto(
    const std::vector<RunRecord>& runs) const {
  std::vector<std::string> job_ids;
  for (const RunRecord& r : runs) {
    if (!r.job_id.empty()) job_ids.push_back(r.job_id);
  }
  auto jobs = store_->JobsOf(job_ids);
  if (!jobs.ok()) return jobs.status();
  std::map<std::string, const jobs::v1::Job*> by_id;
  for (const auto& j : *jobs) by_id[j.id()] = &j;
  std::vector<v1::TaskRun> out;
  for (const RunRecord& r : runs) {
    v1::TaskRun run;
    run.set_id(r.id);
    run.set_task_id(r.task_id);
    run.set_job_id(r.job_id);
    run.set_trigger(r.trigger);
    run.set_skipped(r.skipped);
    run.set_requested_by(r.requested_by);
    if (IsSet(r.scheduled_time)) *run.mutable_scheduled_time() = ToProtoTime(r.scheduled_time);
    if (auto it = by_id.find(r.job_id); it != by_id.end()) {
      const jobs::v1::Job& job = *it->second;
      run.set_state(job.state());
      if (job.has_start_time()) *run.mutable_start_time() = job.start_time();
      if (job.has_end_time()) *run.mutable_end_time() = job.end_time();
      if (job.state() == jobs::v1::JOB_STATE_FAILED) *run.mutable_error() = job.error();
    }
    out.push_back(std::move(run));
  }
  return out;
}

absl::StatusOr<v1::Task> Scheduler::ToProto(const TaskRecord& record, bool with_runs) const {
  const PeriodicTask* task = Find(record.id);
  if (task == nullptr) return TaskNotFound(record.id);
  auto effective = EffectiveOf(record);
  if (!effective.ok()) return effective.status();
  v1::Task out;
  out.set_id(task->id);
  out.set_description(task->description);
  if (effective->schedule.is_cron()) {
    out.set_cron(effective->schedule.cron());
  } else {
    out.mutable_interval()->set_seconds(absl::ToInt64Seconds(effective->schedule.interval()));
  }
  out.set_job_kind(task->job_kind);
  out.set_state(record.state);
  out.set_pause_note(record.pause_note);
  out.set_overlap_policy(effective->allow_overlap ? v1::OVERLAP_POLICY_ALLOW_ALL
                                                  : v1::OVERLAP_POLICY_SKIP);
  out.set_skipped_run_count(record.skipped_count);
  out.set_missed_run_count(record.missed_count);
  out.set_schedule_overridden(!record.cron_override.empty() ||
                              record.interval_override > absl::ZeroDuration() ||
                              record.overlap_override != v1::OVERLAP_POLICY_UNSPECIFIED);
  if (IsSet(record.update_time)) *out.mutable_update_time() = ToProtoTime(record.update_time);
  if (record.state == v1::TASK_STATE_ACTIVE && IsSet(record.next_run_time)) {
    // Overdue (no leader yet, or this instant): due now.
    absl::Time due = std::max(record.next_run_time, options_.clock());
    if (record.next_run_time < options_.clock()) {
      due = effective->schedule.LatestAtOrBefore(options_.clock(), record.next_run_time);
    }
    *out.mutable_next_run_time() = ToProtoTime(due);
    for (int i = 0; i < kUpcoming && IsSet(due); ++i) {
      *out.add_upcoming_run_times() = ToProtoTime(due);
      due = effective->schedule.NextAfter(due);
    }
  }
  if (!with_runs) return out;
  PageRequest page;
  page.page_size = kRecent;
  auto runs = store_->ListRuns(record.id, page);
  if (!runs.ok()) return runs.status();
  if (runs->size() > kRecent) runs->resize(kRecent);
  auto recent = RunsToProto(*runs);
  if (!recent.ok()) return recent.status();
  for (auto& r : *recent) *out.add_recent_runs() = std::move(r);
  if (!out.recent_runs().empty()) {
    for (const auto& r : out.recent_runs()) {
      if (r.skipped()) continue;
      if (r.has_start_time()) *out.mutable_last_run_time() = r.start_time();
      out.set_last_run_state(r.state());
      break;
    }
  }
  return out;
}

absl::StatusOr<std::vector<v1::Task>> Scheduler::ListTasks() const {
  auto records = store_->ListTasks();
  if (!records.ok()) return records.status();
  std::vector<v1::Task> out;
  for (const TaskRecord& r : *records) {
    if (Find(r.id) == nullptr) continue;
    auto t = ToProto(r, true);
    if (!t.ok()) return t.status();
    out.push_back(*std::move(t));
  }
  return out;
}

absl::StatusOr<v1::Task> Scheduler::GetTask(const std::string& task_id) const {
  if (Find(task_id) == nullptr) {
    return TaskNotFound(task_id);
  }
  auto record = store_->GetTask(task_id);
  if (!record.ok()) return record.status();
  return ToProto(*record, true);
}

absl::StatusOr<jobs::v1::Job> Scheduler::RunNow(const Principal& caller, const std::string& task_id,
                                                const std::string& request_id) {
  const PeriodicTask* task = Find(task_id);
  if (task == nullptr) {
    return TaskNotFound(task_id);
  }
  auto record = store_->GetTask(task_id);
  if (!record.ok()) return record.status();
  auto effective = EffectiveOf(*record);
  if (!effective.ok()) return effective.status();
  jobs::EnqueueRequest job = JobFor(*task, effective->allow_overlap);
  // Idempotent per caller: the platform owns the job, the key is theirs.
  job.request_id =
      absl::StrCat("manual:", caller.user_id, ":", request_id.empty() ? NewId("") : request_id);
  auto run = store_->RunNow(task_id, NewId("run-"), caller.user_id, job, options_.clock());
  if (!run.ok()) return run.status();
  auto jobs = store_->JobsOf({run->job_id});
  if (!jobs.ok()) return jobs.status();
  if (jobs->empty()) return absl::InternalError("the manual run's job is gone");
  return jobs->front();
}

absl::StatusOr<v1::Task> Scheduler::Pause(const std::string& task_id, const std::string& note) {
  if (Find(task_id) == nullptr) {
    return TaskNotFound(task_id);
  }
  auto saved = store_->Update(
      task_id,
      [&](TaskRecord& t) {
        t.state = v1::TASK_STATE_PAUSED;
        t.pause_note = note;
        return absl::OkStatus();
      },
      options_.clock());
  if (!saved.ok()) return saved.status();
  return ToProto(*saved, true);
}

absl::StatusOr<v1::Task> Scheduler::Resume(const std::string& task_id) {
  if (Find(task_id) == nullptr) {
    return TaskNotFound(task_id);
  }
  const absl::Time now = options_.clock();
  auto saved = store_->Update(
      task_id,
      [&](TaskRecord& t) -> absl::Status {
        if (t.state == v1::TASK_STATE_ACTIVE) return absl::OkStatus();
        auto effective = EffectiveOf(t);
        if (!effective.ok()) return effective.status();
        // Runs that came due while paused are not made up.
        t.state = v1::TASK_STATE_ACTIVE;
        t.pause_note.clear();
        t.next_run_time = effective->schedule.NextAfter(now);
        t.schedule_key = effective->schedule.Key();
        return absl::OkStatus();
      },
      now);
  if (!saved.ok()) return saved.status();
  Wake();
  return ToProto(*saved, true);
}

absl::StatusOr<v1::Task> Scheduler::UpdateSchedule(const v1::UpdateTaskScheduleRequest& request) {
  if (Find(request.task_id()) == nullptr) {
    return TaskNotFound(request.task_id());
  }
  if (request.reset_to_default() &&
      (request.schedule_case() != v1::UpdateTaskScheduleRequest::SCHEDULE_NOT_SET ||
       request.overlap_policy() != v1::OVERLAP_POLICY_UNSPECIFIED)) {
    return absl::InvalidArgumentError(
        "reset_to_default: with it, set neither cron, interval nor overlap_policy");
  }
  // Checked before the task is locked.
  std::optional<Schedule> schedule;
  switch (request.schedule_case()) {
    case v1::UpdateTaskScheduleRequest::kCron: {
      auto s = Schedule::Cron(request.cron(), "cron");
      if (!s.ok()) return s.status();
      schedule = *std::move(s);
      break;
    }
    case v1::UpdateTaskScheduleRequest::kInterval: {
      const auto& d = request.interval();
      auto s =
          Schedule::Every(absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos()), "interval");
      if (!s.ok()) return s.status();
      schedule = *std::move(s);
      break;
    }
    case v1::UpdateTaskScheduleRequest::SCHEDULE_NOT_SET:
      break;
  }
  const absl::Time now = options_.clock();
  auto saved = store_->Update(
      request.task_id(),
      [&](TaskRecord& t) -> absl::Status {
        if (request.reset_to_default()) {
          t.cron_override.clear();
          t.interval_override = absl::ZeroDuration();
          t.overlap_override = v1::OVERLAP_POLICY_UNSPECIFIED;
        }
        if (schedule && schedule->is_cron()) {
          t.cron_override = schedule->cron();
          t.interval_override = absl::ZeroDuration();
        } else if (schedule) {
          t.cron_override.clear();
          t.interval_override = schedule->interval();
        }
        if (request.overlap_policy() != v1::OVERLAP_POLICY_UNSPECIFIED) {
          t.overlap_override = request.overlap_policy();
        }
        auto effective = EffectiveOf(t);
        if (!effective.ok()) return effective.status();
        // The next due time moves only with the schedule.
        if (t.schedule_key != effective->schedule.Key()) {
          t.schedule_key = effective->schedule.Key();
          t.next_run_time = effective->schedule.NextAfter(now);
        }
        return absl::OkStatus();
      },
      now);
  if (!saved.ok()) return saved.status();
  Wake();
  return ToProto(*saved, true);
}

absl::StatusOr<v1::ListTaskRunsResponse> Scheduler::ListRuns(
    const v1::ListTaskRunsRequest& request) const {
  if (Find(request.task_id()) == nullptr) {
    return TaskNotFound(request.task_id());
  }
  auto page =
      ParsePageRequest(request.page_size(), request.page_token(), request.task_id(), 50, 500);
  if (!page.ok()) return page.status();
  auto runs = store_->ListRuns(request.task_id(), *page);
  if (!runs.ok()) return runs.status();
  v1::ListTaskRunsResponse out;
  const bool more = runs->size() > static_cast<size_t>(page->page_size);
  if (more) runs->resize(static_cast<size_t>(page->page_size));
  auto protos = RunsToProto(*runs);
  if (!protos.ok()) return protos.status();
  for (auto& r : *protos) *out.add_runs() = std::move(r);
  if (more && !runs->empty()) {
    const RunRecord& last = runs->back();
    out.set_next_page_token(MakePageToken(
        request.task_id(), {std::to_string(absl::ToUnixMicros(last.create_time)), last.id}));
  }
  return out;
}

}  // namespace orchestrator::scheduler
