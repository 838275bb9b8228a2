// SchedulerService in a mesh over a real PostgreSQL: the platform's
// periodic tasks listed, rescheduled, paused, run by hand and run on their
// schedule as jobs of the job engine, once per due time.
#include <grpcpp/grpcpp.h>

#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "orchestrator/scheduler/v1/scheduler.grpc.pb.h"
#include "services/jobs/store/pg_job_store.h"
#include "tests/support/job_wait.h"
#include "tests/support/test_mesh.h"

namespace orchestrator::scheduler {
namespace {

using testing::TestMesh;

constexpr char kPrune[] = "jobs.prune";

std::unique_ptr<TestMesh> MeshWith(const std::function<void(MeshConfig&)>& tweak) {
  return std::make_unique<TestMesh>("admin,projects,jobs,scheduler", [&](MeshConfig& c) {
    c.scheduler_lease_ttl = std::chrono::seconds(3);
    c.demo_jobs = true;
    if (tweak) tweak(c);
  });
}

class SchedulerTest : public ::testing::Test {
 protected:
  void Start(const std::function<void(MeshConfig&)>& tweak = nullptr) {
    mesh_.reset();
    mesh_ = MeshWith(tweak);
    scheduler_ = v1::SchedulerService::NewStub(mesh_->channel());
    jobs_ = jobs::v1::JobService::NewStub(mesh_->channel());
  }
  void SetUp() override { Start(); }

  v1::Task Get(const std::string& id = kPrune) {
    v1::GetTaskRequest req;
    req.set_task_id(id);
    v1::GetTaskResponse resp;
    grpc::Status s = scheduler_->GetTask(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.task();
  }

  grpc::Status EverySeconds(int seconds, v1::OverlapPolicy overlap = v1::OVERLAP_POLICY_UNSPECIFIED,
                            const std::string& id = kPrune) {
    v1::UpdateTaskScheduleRequest req;
    req.set_task_id(id);
    req.mutable_interval()->set_seconds(seconds);
    req.set_overlap_policy(overlap);
    v1::UpdateTaskScheduleResponse resp;
    return scheduler_->UpdateTaskSchedule(Ctx().get(), req, &resp);
  }

  std::vector<v1::TaskRun> Runs(const std::string& id = kPrune) {
    v1::ListTaskRunsRequest req;
    req.set_task_id(id);
    req.set_page_size(500);
    v1::ListTaskRunsResponse resp;
    grpc::Status s = scheduler_->ListTaskRuns(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {resp.runs().begin(), resp.runs().end()};
  }

  // Waits until `id` has at least `n` runs; returns them, newest first.
  std::vector<v1::TaskRun> AwaitRuns(size_t n, absl::Duration timeout = absl::Seconds(20),
                                     const std::string& id = kPrune) {
    const absl::Time deadline = absl::Now() + timeout;
    std::vector<v1::TaskRun> runs;
    while (absl::Now() < deadline) {
      runs = Runs(id);
      if (runs.size() >= n) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
    EXPECT_GE(runs.size(), n);
    return runs;
  }

  std::unique_ptr<grpc::ClientContext> Ctx() { return TestMesh::Context(mesh_->admin_token()); }

  std::unique_ptr<TestMesh> mesh_;
  std::unique_ptr<v1::SchedulerService::Stub> scheduler_;
  std::unique_ptr<jobs::v1::JobService::Stub> jobs_;
};

TEST_F(SchedulerTest, ThePlatformsTasksAreListedWithTheirScheduleAndNextRuns) {
  v1::ListTasksResponse resp;
  ASSERT_TRUE(scheduler_->ListTasks(Ctx().get(), v1::ListTasksRequest(), &resp).ok());
  const v1::Task* prune = nullptr;
  for (const auto& t : resp.tasks()) {
    if (t.id() == kPrune) prune = &t;
  }
  ASSERT_NE(prune, nullptr);
  EXPECT_EQ(prune->job_kind(), kPrune);
  EXPECT_FALSE(prune->description().empty());
  EXPECT_EQ(prune->interval().seconds(), 3600);
  EXPECT_EQ(prune->state(), v1::TASK_STATE_ACTIVE);
  EXPECT_EQ(prune->overlap_policy(), v1::OVERLAP_POLICY_SKIP);
  EXPECT_FALSE(prune->schedule_overridden());
  ASSERT_EQ(prune->upcoming_run_times_size(), 3);
  EXPECT_EQ(prune->upcoming_run_times(0).seconds() % 3600, 0) << "due on the hour";
  EXPECT_EQ(prune->upcoming_run_times(1).seconds() - prune->upcoming_run_times(0).seconds(), 3600);
  EXPECT_EQ(prune->next_run_time().seconds(), prune->upcoming_run_times(0).seconds());
}

TEST_F(SchedulerTest, EachDueTimeRunsOnceAsAJobOfTheTasksKind) {
  ASSERT_TRUE(EverySeconds(1).ok());
  auto runs = AwaitRuns(4);
  std::set<int64_t> due;
  for (const auto& run : runs) {
    EXPECT_EQ(run.trigger(), v1::RUN_TRIGGER_SCHEDULE);
    EXPECT_FALSE(run.skipped());
    ASSERT_FALSE(run.job_id().empty());
    EXPECT_EQ(run.scheduled_time().nanos(), 0);
    EXPECT_TRUE(due.insert(run.scheduled_time().seconds()).second)
        << "due time " << run.scheduled_time().seconds() << " ran twice";
  }
  const v1::Task task = Get();
  EXPECT_TRUE(task.schedule_overridden());
  EXPECT_EQ(task.interval().seconds(), 1);
  // Consecutive due times, one second apart, unless one was missed.
  if (task.missed_run_count() == 0) {
    EXPECT_EQ(*due.rbegin() - *due.begin(), static_cast<int64_t>(due.size()) - 1);
  }
  // The oldest run's job ended, as the jobs component ran it.
  auto job = testing::WaitForJob(*jobs_, mesh_->admin_token(), runs.back().job_id(),
                                 std::chrono::seconds(30));
  EXPECT_EQ(job.kind(), kPrune);
  EXPECT_EQ(job.state(), jobs::v1::JOB_STATE_SUCCEEDED) << job.error().message();
  EXPECT_TRUE(job.result().fields().contains("jobs_deleted"));
  EXPECT_EQ(job.params().fields().at("task_id").string_value(), kPrune);
  ASSERT_FALSE(task.recent_runs().empty());
  EXPECT_TRUE(task.has_last_run_time());
}

TEST_F(SchedulerTest, PauseStopsTheScheduleAManualRunStillRunsAndResumeMakesNothingUp) {
  ASSERT_TRUE(EverySeconds(1).ok());
  AwaitRuns(1);
  v1::PauseTaskRequest pause;
  pause.set_task_id(kPrune);
  pause.set_note("investigating the prune's load");
  v1::PauseTaskResponse paused;
  ASSERT_TRUE(scheduler_->PauseTask(Ctx().get(), pause, &paused).ok());
  EXPECT_EQ(paused.task().state(), v1::TASK_STATE_PAUSED);
  EXPECT_EQ(paused.task().pause_note(), "investigating the prune's load");
  EXPECT_EQ(paused.task().upcoming_run_times_size(), 0);
  EXPECT_FALSE(paused.task().has_next_run_time());

  absl::SleepFor(absl::Milliseconds(1500));  // a run in flight at the pause may still land
  const size_t before = Runs().size();
  absl::SleepFor(absl::Seconds(3));
  EXPECT_EQ(Runs().size(), before) << "a paused task ran on its schedule";

  // By hand it runs, once per request.
  v1::RunTaskNowRequest now;
  now.set_task_id(kPrune);
  now.set_request_id("prune-by-hand-1");
  v1::RunTaskNowResponse first;
  v1::RunTaskNowResponse again;
  ASSERT_TRUE(scheduler_->RunTaskNow(Ctx().get(), now, &first).ok());
  ASSERT_TRUE(scheduler_->RunTaskNow(Ctx().get(), now, &again).ok());
  EXPECT_EQ(first.job().id(), again.job().id());
  EXPECT_EQ(first.job().kind(), kPrune);
  auto job =
      testing::WaitForJob(*jobs_, mesh_->admin_token(), first.job().id(), std::chrono::seconds(30));
  EXPECT_EQ(job.state(), jobs::v1::JOB_STATE_SUCCEEDED);
  auto runs = Runs();
  ASSERT_EQ(runs.size(), before + 1);
  EXPECT_EQ(runs.front().trigger(), v1::RUN_TRIGGER_MANUAL);
  EXPECT_EQ(runs.front().job_id(), first.job().id());
  EXPECT_FALSE(runs.front().requested_by().empty());
  EXPECT_FALSE(runs.front().has_scheduled_time());

  // Resumed: the schedule goes on from now; the paused seconds are neither
  // made up nor counted as missed.
  const int64_t missed = Get().missed_run_count();
  v1::ResumeTaskRequest resume;
  resume.set_task_id(kPrune);
  v1::ResumeTaskResponse resumed;
  ASSERT_TRUE(scheduler_->ResumeTask(Ctx().get(), resume, &resumed).ok());
  EXPECT_EQ(resumed.task().state(), v1::TASK_STATE_ACTIVE);
  EXPECT_TRUE(resumed.task().pause_note().empty());
  EXPECT_EQ(resumed.task().upcoming_run_times_size(), 3);
  AwaitRuns(before + 3);
  EXPECT_EQ(Get().missed_run_count(), missed);
}

TEST_F(SchedulerTest, BadSchedulesUnknownTasksAndNonAdminsAreRefusedClearly) {
  v1::UpdateTaskScheduleRequest cron;
  cron.set_task_id(kPrune);
  cron.set_cron("61 * * * *");
  v1::UpdateTaskScheduleResponse resp;
  grpc::Status s = scheduler_->UpdateTaskSchedule(Ctx().get(), cron, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StartsWith(s.error_message(), "cron: ")) << s.error_message();

  cron.set_cron("0 3 * *");
  s = scheduler_->UpdateTaskSchedule(Ctx().get(), cron, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "five fields")) << s.error_message();

  v1::UpdateTaskScheduleRequest interval;
  interval.set_task_id(kPrune);
  interval.mutable_interval()->set_nanos(500000000);
  s = scheduler_->UpdateTaskSchedule(Ctx().get(), interval, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "interval")) << s.error_message();

  v1::UpdateTaskScheduleRequest both;
  both.set_task_id(kPrune);
  both.set_reset_to_default(true);
  both.set_cron("0 3 * * *");
  s = scheduler_->UpdateTaskSchedule(Ctx().get(), both, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StartsWith(s.error_message(), "reset_to_default")) << s.error_message();

  // A good cron, then back to the default.
  cron.set_cron("15 4 * * 1-5");
  ASSERT_TRUE(scheduler_->UpdateTaskSchedule(Ctx().get(), cron, &resp).ok());
  EXPECT_EQ(resp.task().cron(), "15 4 * * 1-5");
  EXPECT_EQ(resp.task().upcoming_run_times(0).seconds() % 86400, 4 * 3600 + 15 * 60);
  v1::UpdateTaskScheduleRequest reset;
  reset.set_task_id(kPrune);
  reset.set_reset_to_default(true);
  ASSERT_TRUE(scheduler_->UpdateTaskSchedule(Ctx().get(), reset, &resp).ok());
  EXPECT_EQ(resp.task().interval().seconds(), 3600);
  EXPECT_FALSE(resp.task().schedule_overridden());

  v1::GetTaskRequest get;
  get.set_task_id("no.such.task");
  v1::GetTaskResponse got;
  EXPECT_EQ(scheduler_->GetTask(Ctx().get(), get, &got).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::RunTaskNowRequest run;
  run.set_task_id("no.such.task");
  v1::RunTaskNowResponse ran;
  EXPECT_EQ(scheduler_->RunTaskNow(Ctx().get(), run, &ran).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::PauseTaskRequest pause;
  pause.set_task_id("no.such.task");
  v1::PauseTaskResponse paused;
  EXPECT_EQ(scheduler_->PauseTask(Ctx().get(), pause, &paused).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::ListTaskRunsRequest list;
  list.set_task_id("no.such.task");
  v1::ListTaskRunsResponse listed;
  EXPECT_EQ(scheduler_->ListTaskRuns(Ctx().get(), list, &listed).error_code(),
            grpc::StatusCode::NOT_FOUND);
  get.set_task_id("");
  s = scheduler_->GetTask(Ctx().get(), get, &got);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StartsWith(s.error_message(), "task_id")) << s.error_message();

  // Scheduling is an admin's.
  auto [user, token] = mesh_->NewUser("sam");
  v1::ListTasksResponse tasks;
  EXPECT_EQ(scheduler_->ListTasks(TestMesh::Context(token).get(), v1::ListTasksRequest(), &tasks)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  run.set_task_id(kPrune);
  EXPECT_EQ(scheduler_->RunTaskNow(TestMesh::Context(token).get(), run, &ran).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(SchedulerTest, ARunDueWhileThePreviousHasNotEndedIsSkippedUnlessOverlapIsAllowed) {
  // The prune's jobs may not run (no owner may run one at a time): a
  // run's job stays queued, so the previous run never ends.
  Start([](MeshConfig& c) { c.job_owner_limits[kPrune] = 0; });
  ASSERT_TRUE(EverySeconds(1).ok());
  auto runs = AwaitRuns(4);
  int with_job = 0;
  for (const auto& r : runs) with_job += r.job_id().empty() ? 0 : 1;
  EXPECT_EQ(with_job, 1) << "one queued job; every later due time skipped";
  EXPECT_TRUE(runs.front().skipped());
  EXPECT_GE(Get().skipped_run_count(), 3);

  ASSERT_TRUE(EverySeconds(1, v1::OVERLAP_POLICY_ALLOW_ALL).ok());
  EXPECT_EQ(Get().overlap_policy(), v1::OVERLAP_POLICY_ALLOW_ALL);
  const size_t before = Runs().size();
  runs = AwaitRuns(before + 3);
  for (size_t i = 0; i + before < runs.size(); ++i) {
    EXPECT_FALSE(runs[i].skipped());
    EXPECT_FALSE(runs[i].job_id().empty());
  }
}

TEST_F(SchedulerTest, ThePruneDeletesOnlyJobsThatEndedBeforeTheRetention) {
  auto pool = mesh_->database().NewPool(2);
  jobs::PgJobStore store(pool);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    jobs::EnqueueRequest r;
    r.kind = "demo.noop";
    r.owner_id = "usr_prune";
    auto job = store.Enqueue(r, absl::Now());
    ASSERT_TRUE(job.ok()) << job.status();
    ids.push_back(job->id());
  }
  for (const auto& id : ids) {
    EXPECT_EQ(
        testing::WaitForJob(*jobs_, mesh_->admin_token(), id, std::chrono::seconds(30)).state(),
        jobs::v1::JOB_STATE_SUCCEEDED);
  }
  // Three ended eight days ago; a queued one was made long ago but has
  // not ended.
  constexpr db::Statement kAge{
      "test_age", "UPDATE jobs.jobs SET end_time = now() - interval '8 days' WHERE id = ANY($1)"};
  ASSERT_TRUE(pool->Exec(kAge, {"{" + ids[0] + "," + ids[1] + "," + ids[2] + "}"}).ok());
  jobs::EnqueueRequest waiting;
  waiting.kind = "no.handler.here";
  waiting.owner_id = "usr_prune";
  auto queued = store.Enqueue(waiting, absl::Now() - absl::Hours(24 * 30));
  ASSERT_TRUE(queued.ok());

  v1::RunTaskNowRequest now;
  now.set_task_id(kPrune);
  v1::RunTaskNowResponse ran;
  ASSERT_TRUE(scheduler_->RunTaskNow(Ctx().get(), now, &ran).ok());
  auto job =
      testing::WaitForJob(*jobs_, mesh_->admin_token(), ran.job().id(), std::chrono::seconds(30));
  ASSERT_EQ(job.state(), jobs::v1::JOB_STATE_SUCCEEDED) << job.error().message();
  EXPECT_EQ(job.result().fields().at("jobs_deleted").number_value(), 3);
  for (int i = 0; i < 5; ++i) {
    auto got = store.Get(ids[i]);
    EXPECT_EQ(got.ok(), i >= 3) << ids[i];
  }
  EXPECT_TRUE(store.Get(queued->id()).ok());
  constexpr db::Statement kEvents{"test_events",
                                  "SELECT count(*) FROM jobs.events WHERE job_id = ANY($1)"};
  auto events = pool->Exec(kEvents, {"{" + ids[0] + "," + ids[1] + "," + ids[2] + "}"});
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->GetInt64(0, 0), 0) << "their events went with them";

  // The scheduler's own record of runs goes after the same retention: the
  // leader prunes when it starts leading, then hourly.
  constexpr db::Statement kOldRun{
      "test_old_run",
      "INSERT INTO scheduler.runs (id, task_id, job_id, run_trigger, scheduled_time, create_time) "
      "VALUES ('run-old', $1, '', 1, now() - interval '8 days', now() - interval '8 days')"};
  ASSERT_TRUE(pool->Exec(kOldRun, {kPrune}).ok());
  const size_t kept = Runs().size();
  mesh_->Restart();
  scheduler_ = v1::SchedulerService::NewStub(mesh_->channel());
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (Runs().size() >= kept && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(100));
  auto runs = Runs();
  EXPECT_EQ(runs.size(), kept - 1);
  for (const auto& r : runs) EXPECT_NE(r.id(), "run-old");
}

}  // namespace
}  // namespace orchestrator::scheduler
