// The job engine against a real PostgreSQL: enqueue, claims, retries with
// backoff (on an injected clock), cancellation, limits across workers with
// their own connections, and events.
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <atomic>
#include <functional>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/jobs/engine/demo_handlers.h"
#include "services/jobs/engine/worker.h"
#include "services/jobs/store/job_event_hub.h"
#include "services/jobs/store/pg_job_store.h"
#include "tests/support/job_events.h"
#include "tests/support/test_database.h"

namespace orchestrator::jobs {
namespace {

using google::protobuf::util::TimeUtil;
using ::testing::HasSubstr;
using testing::JobEventLog;

struct FakeClock {
  std::atomic<int64_t> micros{absl::ToUnixMicros(absl::FromUnixSeconds(1'900'000'000))};
  absl::Time Now() const { return absl::FromUnixMicros(micros.load()); }
  void Advance(absl::Duration d) { micros += absl::ToInt64Microseconds(d); }
};

absl::Time TimeOf(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(t));
}

// A job's lease as stored: who holds it (empty: nobody) and until when.
struct StoredLease {
  std::string owner;
  absl::Time expires = absl::InfinitePast();
  v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
};

StoredLease LeaseOf(db::Pool& pool, const std::string& job_id) {
  auto r = pool.Exec(db::Statement{"test_lease_of",
                                   "SELECT coalesce(lease_owner, ''), (extract(epoch FROM "
                                   "lease_expires) * 1000000)::bigint, state FROM jobs.jobs "
                                   "WHERE id = $1"},
                     {job_id});
  StoredLease out;
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok() || r->rows() != 1) return out;
  out.owner = std::string(r->Get(0, 0));
  if (!r->IsNull(0, 1)) out.expires = absl::FromUnixMicros(r->GetInt64(0, 1));
  out.state = static_cast<v1::JobState>(r->GetInt64(0, 2));
  return out;
}

// Polls `done` (real time) until it holds or `timeout` passes.
bool Eventually(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

// One "process": its own connections, its own hub, optionally a worker.
struct Node {
  Node(const testing::TestDatabase& db, const Clock& clock)
      : pool(db.NewPool(4)),
        store(std::make_shared<PgJobStore>(pool)),
        hub(db.conninfo(), pool),
        clock(clock) {
    hub.Start();
    EXPECT_TRUE(hub.WaitUntilListening(absl::Seconds(10)));
  }
  ~Node() {
    if (worker) worker->Stop(absl::Seconds(5));
    hub.Stop();
  }
  Worker& StartWorker(WorkerOptions options, const std::function<void(Worker&)>& setup) {
    worker = std::make_unique<Worker>(store, &hub, std::move(options), clock, [] { return 1.0; });
    setup(*worker);
    worker->Start();
    return *worker;
  }

  db::PoolPtr pool;
  std::shared_ptr<PgJobStore> store;
  JobEventHub hub;
  Clock clock;
  std::unique_ptr<Worker> worker;
};

class JobEngineTest : public ::testing::Test {
 protected:
  JobEngineTest() {
    auto pool = db_.NewPool(1);
    EXPECT_TRUE(db::ApplyMigrations(*pool, db::JobsMigrations()).ok());
  }

  EnqueueRequest Demo(const std::string& kind, const std::string& params_json = "{}") {
    EnqueueRequest r;
    r.kind = kind;
    r.owner_id = "alice";
    google::protobuf::util::JsonParseOptions o;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(params_json, &r.params, o).ok());
    return r;
  }

  testing::TestDatabase db_;
  FakeClock fake_;
  Clock clock_ = [this] { return fake_.Now(); };
};

TEST_F(JobEngineTest, EnqueueIsIdempotentPerOwnerAndRequestId) {
  Node node(db_, clock_);
  EnqueueRequest r = Demo("demo.noop");
  r.request_id = "req-1";
  auto first = node.store->Enqueue(r, fake_.Now());
  auto again = node.store->Enqueue(r, fake_.Now());
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(first->id(), again->id());
  r.owner_id = "bob";
  auto bobs = node.store->Enqueue(r, fake_.Now());
  ASSERT_TRUE(bobs.ok());
  EXPECT_NE(bobs->id(), first->id());
  auto events = node.store->ListEvents(first->id(), 0, 10);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);  // one job, one QUEUED event
  EXPECT_EQ((*events)[0].state_changed().to_state(), v1::JOB_STATE_QUEUED);
}

TEST_F(JobEngineTest, EnqueueCommitsOrRollsBackWithTheCallersTransaction) {
  Node node(db_, clock_);
  EnqueueRequest r = Demo("demo.noop");
  r.request_id = "in-tx";
  absl::Status rolled_back = node.pool->InTransaction([&](db::Transaction& tx) -> absl::Status {
    auto job = node.store->Enqueue(tx, r, fake_.Now());
    if (!job.ok()) return job.status();
    return absl::AbortedError("the domain write failed");
  });
  EXPECT_EQ(rolled_back.code(), absl::StatusCode::kAborted);
  auto page = node.store->List(JobFilter{}, PageRequest{10, {}});
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->jobs.empty());
}

TEST_F(JobEngineTest, ASucceedingJobRecordsProgressResultAndNumberedEvents) {
  Node node(db_, clock_);
  node.StartWorker(WorkerOptions{}, RegisterDemoHandlers);
  auto job = node.store->Enqueue(Demo("demo.sleep", R"({"seconds":0,"steps":3})"), fake_.Now());
  ASSERT_TRUE(job.ok());
  JobEventLog log(node.hub, job->id());
  node.worker->Poke();
  ASSERT_NE(log.WaitForState(v1::JOB_STATE_SUCCEEDED).sequence(), 0);
  auto events = node.store->ListEvents(job->id(), 0, 100);
  ASSERT_TRUE(events.ok());
  std::vector<int64_t> sequences;
  std::vector<v1::JobEventType> types;
  for (const auto& e : *events) {
    sequences.push_back(e.sequence());
    types.push_back(e.type());
  }
  EXPECT_EQ(sequences, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(types.front(), v1::JOB_EVENT_TYPE_STATE_CHANGED);
  EXPECT_EQ(types[2], v1::JOB_EVENT_TYPE_PROGRESS);
  EXPECT_EQ(types[5], v1::JOB_EVENT_TYPE_RESULT);
  auto done = node.store->Get(job->id());
  EXPECT_EQ(done->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(done->progress_percent(), 100);
  EXPECT_EQ(done->attempt(), 1);
  EXPECT_EQ(done->last_event_sequence(), 7);
}

TEST_F(JobEngineTest, TransientFailuresRetryOnTheBackoffScheduleThenFail) {
  Node node(db_, clock_);
  WorkerOptions options;
  options.backoff.base = absl::Seconds(10);
  options.poll = absl::Hours(1);  // only Poke() claims, so the clock alone decides
  node.StartWorker(options, RegisterDemoHandlers);
  EnqueueRequest r = Demo("demo.fail", R"({"code":"UNAVAILABLE"})");
  r.max_attempts = 3;
  const absl::Time t0 = fake_.Now();
  auto job = node.store->Enqueue(r, t0);
  ASSERT_TRUE(job.ok());
  JobEventLog log(node.hub, job->id());

  node.worker->Poke();
  auto retry1 = log.WaitForState(v1::JOB_STATE_QUEUED, 2);  // 1st QUEUED is the enqueue
  ASSERT_NE(retry1.sequence(), 0);
  EXPECT_EQ(TimeOf(retry1.state_changed().run_after()), t0 + absl::Seconds(10));
  EXPECT_EQ(retry1.state_changed().error().code(),
            static_cast<int>(absl::StatusCode::kUnavailable));

  // Not claimable before its time, by anyone.
  auto early =
      node.store->Claim("other", {"demo.fail"}, {}, 10, absl::Seconds(30), t0 + absl::Seconds(9));
  ASSERT_TRUE(early.ok());
  EXPECT_TRUE(early->empty());

  fake_.Advance(absl::Seconds(10));
  node.worker->Poke();
  auto retry2 = log.WaitForState(v1::JOB_STATE_QUEUED, 3);
  ASSERT_NE(retry2.sequence(), 0);
  EXPECT_EQ(TimeOf(retry2.state_changed().run_after()), t0 + absl::Seconds(10 + 20));

  fake_.Advance(absl::Seconds(20));
  node.worker->Poke();
  auto failed = log.WaitForState(v1::JOB_STATE_FAILED);
  ASSERT_NE(failed.sequence(), 0);
  auto final_job = node.store->Get(job->id());
  EXPECT_EQ(final_job->attempt(), 3);
  EXPECT_EQ(final_job->error().code(), static_cast<int>(absl::StatusCode::kUnavailable));
}

TEST_F(JobEngineTest, PermanentFailuresFailAtOnce) {
  Node node(db_, clock_);
  node.StartWorker(WorkerOptions{}, RegisterDemoHandlers);
  auto job =
      node.store->Enqueue(Demo("demo.fail", R"({"code":"FAILED_PRECONDITION"})"), fake_.Now());
  ASSERT_TRUE(job.ok());
  JobEventLog log(node.hub, job->id());
  node.worker->Poke();
  ASSERT_NE(log.WaitForState(v1::JOB_STATE_FAILED).sequence(), 0);
  auto done = node.store->Get(job->id());
  EXPECT_EQ(done->attempt(), 1);
  EXPECT_EQ(done->error().code(), static_cast<int>(absl::StatusCode::kFailedPrecondition));
}

TEST_F(JobEngineTest, CancellingAQueuedJobEndsItAtOnce) {
  Node node(db_, clock_);
  auto job = node.store->Enqueue(Demo("demo.sleep"), fake_.Now());
  ASSERT_TRUE(job.ok());
  auto cancelled = node.store->Cancel(job->id(), "alice", "changed my mind", fake_.Now());
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state(), v1::JOB_STATE_CANCELLED);
  auto again = node.store->Cancel(job->id(), "alice", "", fake_.Now());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  auto claimed = node.store->Claim("w", {"demo.sleep"}, {}, 10, absl::Seconds(30), fake_.Now());
  EXPECT_TRUE(claimed->empty());
}

TEST_F(JobEngineTest, ARunningHandlerSeesTheCancelAndTheJobEndsCancelled) {
  Node node(db_, clock_);
  node.StartWorker(WorkerOptions{}, RegisterDemoHandlers);
  auto job = node.store->Enqueue(Demo("demo.sleep", R"({"seconds":600,"steps":1})"), fake_.Now());
  ASSERT_TRUE(job.ok());
  JobEventLog log(node.hub, job->id());
  node.worker->Poke();
  ASSERT_NE(log.WaitForState(v1::JOB_STATE_RUNNING).sequence(), 0);
  auto requested = node.store->Cancel(job->id(), "alice", "stop", fake_.Now());
  ASSERT_TRUE(requested.ok());
  EXPECT_TRUE(requested->cancel_requested());
  // The handler sleeps for 10 minutes unless the cancel reaches it.
  ASSERT_NE(log.WaitForState(v1::JOB_STATE_CANCELLED, 1, absl::Seconds(15)).sequence(), 0);
  auto retried = node.store->Retry(job->id(), fake_.Now());
  ASSERT_TRUE(retried.ok());
  EXPECT_EQ(retried->state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(retried->attempt(), 0);
}

TEST_F(JobEngineTest, AJobWhoseCancelWasRequestedNeverGoesBackToTheQueue) {
  Node node(db_, clock_);
  // Three running jobs whose cancel arrives before their worker notices it:
  // one fails transiently, one is released by a stopping worker, and one
  // loses its lease. None may run again.
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i)
    ids.push_back(node.store->Enqueue(Demo("demo.noop"), fake_.Now())->id());
  ASSERT_EQ(node.store->Claim("w", {"demo.noop"}, {}, 3, absl::Seconds(30), fake_.Now())->size(),
            3u);
  auto claimed = node.store->Start("w", ids, absl::Seconds(30), fake_.Now());
  ASSERT_EQ(claimed->size(), 3u);
  for (const auto& id : ids) ASSERT_TRUE(node.store->Cancel(id, "alice", "stop", fake_.Now()).ok());
  std::map<std::string, v1::Job> by_id;
  for (auto& j : *claimed) by_id[j.id()] = j;

  AttemptOutcome retry{
      v1::JOB_STATE_QUEUED, {}, absl::UnavailableError("flaky"), fake_.Now() + absl::Seconds(1)};
  EXPECT_TRUE(*node.store->Finish("w", by_id[ids[0]], retry, fake_.Now()));
  ASSERT_TRUE(node.store->Release("w", by_id[ids[1]], fake_.Now()).ok());
  EXPECT_EQ(*node.store->ReapExpiredLeases(fake_.Now() + absl::Minutes(1)), 1);

  for (const auto& id : ids) {
    auto job = node.store->Get(id);
    EXPECT_EQ(job->state(), v1::JOB_STATE_CANCELLED) << id;
    auto events = node.store->ListEvents(id, 0, 10);
    EXPECT_EQ(events->back().state_changed().to_state(), v1::JOB_STATE_CANCELLED) << id;
  }
  auto again = node.store->Claim("w2", {"demo.noop"}, {}, 3, absl::Seconds(30),
                                 fake_.Now() + absl::Minutes(2));
  EXPECT_TRUE(again->empty());
}

TEST_F(JobEngineTest, ACancelledReservationRetriedWithinItsLeaseIsClaimableAtOnce) {
  Node node(db_, clock_);
  const absl::Duration lease = absl::Seconds(30);
  // A plain job, and a deploy under a per-owner limit of one.
  auto plain = node.store->Enqueue(Demo("demo.noop"), fake_.Now());
  auto deploy = node.store->Enqueue(Demo("deploy"), fake_.Now());
  fake_.Advance(absl::Seconds(1));  // queue order: `deploy` first
  auto next_deploy = node.store->Enqueue(Demo("deploy"), fake_.Now());
  ASSERT_TRUE(plain.ok() && deploy.ok() && next_deploy.ok());
  ClaimLimits limits;
  limits.per_owner = {{"deploy", 1}};
  auto reserved = node.store->Claim("w", {"demo.noop", "deploy"}, limits, 10, lease, fake_.Now());
  ASSERT_TRUE(reserved.ok());
  ASSERT_EQ(reserved->size(), 2u);  // the plain job and the first deploy
  EXPECT_EQ(LeaseOf(*node.pool, deploy->id()).owner, "w");

  // Both cancelled while reserved, then retried well within the lease (the
  // retried deploy goes behind the other one).
  fake_.Advance(absl::Seconds(1));
  for (const auto& id : {plain->id(), deploy->id()}) {
    ASSERT_TRUE(node.store->Cancel(id, "alice", "oops", fake_.Now()).ok());
    EXPECT_EQ(LeaseOf(*node.pool, id).owner, "") << id;
    ASSERT_TRUE(node.store->Retry(id, fake_.Now()).ok());
    EXPECT_EQ(LeaseOf(*node.pool, id).owner, "") << id;
  }
  // The old reservation neither starts them nor counts against the limit.
  auto stale = node.store->Start("w", {plain->id(), deploy->id()}, lease, fake_.Now());
  ASSERT_TRUE(stale.ok());
  EXPECT_TRUE(stale->empty());
  auto again = node.store->Claim("w2", {"demo.noop", "deploy"}, limits, 10, lease,
                                 fake_.Now() + absl::Seconds(1));
  ASSERT_TRUE(again.ok());
  std::vector<std::string> got;
  for (const auto& j : *again) got.push_back(j.id());
  // One deploy only (the limit): the one now first in line.
  EXPECT_THAT(got, ::testing::UnorderedElementsAre(plain->id(), next_deploy->id()));
}

TEST_F(JobEngineTest, AJobReservedWhileAHeartbeatIsInFlightStillStarts) {
  Node node(db_, clock_);
  absl::Notification release_first;
  std::atomic<int> started{0};
  WorkerOptions options;
  options.concurrency = 1;  // the second job waits reserved while the first runs
  options.heartbeat = absl::Milliseconds(50);
  options.lease = absl::Seconds(30);
  Worker& worker = node.StartWorker(options, [&](Worker& w) {
    w.Register("hold", [&](JobContext&) -> absl::StatusOr<google::protobuf::Struct> {
      if (started++ == 0) release_first.WaitForNotificationWithTimeout(absl::Seconds(30));
      return google::protobuf::Struct();
    });
  });
  auto first = node.store->Enqueue(Demo("hold"), fake_.Now());
  ASSERT_TRUE(first.ok());
  JobEventLog first_log(node.hub, first->id());
  worker.Poke();
  ASSERT_NE(first_log.WaitForState(v1::JOB_STATE_RUNNING).sequence(), 0);

  // Another session locks the running job's row: the next heartbeat, which
  // renews it, blocks in the database after taking its snapshot.
  auto locker = db::Connection::Open(db_.conninfo(), std::chrono::seconds(5));
  ASSERT_TRUE(locker.ok()) << locker.status();
  ASSERT_TRUE((*locker)
                  ->ExecScript(absl::StrCat("BEGIN; SELECT 1 FROM jobs.jobs WHERE id = '",
                                            first->id(), "' FOR UPDATE"))
                  .ok());
  auto waiting_on_lock = [&] {
    auto r = node.pool->Exec(
        db::Statement{"test_lock_waiters",
                      "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                      "AND wait_event_type = 'Lock'"});
    return r.ok() && r->GetInt64(0, 0) > 0;
  };
  ASSERT_TRUE(Eventually(waiting_on_lock)) << "the heartbeat never reached the locked row";

  // Meanwhile the dispatcher reserves a second job (no handler is free).
  auto second = node.store->Enqueue(Demo("hold"), fake_.Now());
  ASSERT_TRUE(second.ok());
  JobEventLog second_log(node.hub, second->id());
  worker.Poke();
  ASSERT_TRUE(Eventually([&] { return LeaseOf(*node.pool, second->id()).owner == worker.id(); }));

  // The heartbeat completes; a later round (at a later time) renews the
  // first job, so the blocked round's bookkeeping is done.
  ASSERT_TRUE((*locker)->ExecScript("COMMIT").ok());
  fake_.Advance(absl::Seconds(1));
  ASSERT_TRUE(Eventually(
      [&] { return LeaseOf(*node.pool, first->id()).expires == fake_.Now() + options.lease; }));
  EXPECT_EQ(LeaseOf(*node.pool, second->id()).expires, fake_.Now() + options.lease)
      << "the reservation made during the heartbeat is no longer renewed";

  // The handler frees up: the reserved job starts now, not after its lease.
  release_first.Notify();
  EXPECT_NE(second_log.WaitForState(v1::JOB_STATE_SUCCEEDED, 1, absl::Seconds(10)).sequence(), 0)
      << "the job reserved during the heartbeat was forgotten by its worker";
}

TEST_F(JobEngineTest, ReservationsWaitingBehindBusyHandlersGoToAnIdleWorkerWithinALease) {
  const absl::Duration lease = absl::Seconds(30);
  const absl::Duration step = absl::Seconds(5);
  absl::Notification release;
  std::atomic<int> ran_on_b{0};
  WorkerOptions options;
  options.lease = lease;
  options.heartbeat = absl::Milliseconds(50);
  Node a(db_, clock_), b(db_, clock_);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(a.store->Enqueue(Demo("slow"), fake_.Now())->id());

  // Worker a: one handler, stuck on the first job; it reserves the rest.
  WorkerOptions busy = options;
  busy.concurrency = 1;
  a.StartWorker(busy, [&](Worker& w) {
    w.Register("slow", [&](JobContext&) -> absl::StatusOr<google::protobuf::Struct> {
      release.WaitForNotificationWithTimeout(absl::Seconds(60));
      return google::protobuf::Struct();
    });
  });
  a.worker->Poke();
  ASSERT_TRUE(Eventually([&] {
    int reserved = 0, running = 0;
    for (const auto& id : ids) {
      auto l = LeaseOf(*a.pool, id);
      if (l.owner != a.worker->id()) continue;
      (l.state == v1::JOB_STATE_RUNNING ? running : reserved)++;
    }
    return running == 1 && reserved == 4;
  }));
  // Worker b: idle, with handlers to spare.
  b.StartWorker(options, [&](Worker& w) {
    w.Register("slow", [&](JobContext&) -> absl::StatusOr<google::protobuf::Struct> {
      ++ran_on_b;
      return google::protobuf::Struct();
    });
  });
  b.worker->Poke();

  // Time passes in steps shorter than a lease; after each, a's heartbeat has
  // renewed what it still holds, so nothing lapses on its own.
  absl::Duration waited;
  for (waited = step; waited <= 3 * lease; waited += step) {
    fake_.Advance(step);
    int still_reserved = 0;
    for (const auto& id : ids) {
      ASSERT_TRUE(Eventually([&] {
        auto l = LeaseOf(*a.pool, id);
        return l.owner != a.worker->id() || l.expires == fake_.Now() + lease;
      })) << id;
      auto l = LeaseOf(*a.pool, id);
      if (l.owner == a.worker->id() && l.state == v1::JOB_STATE_QUEUED) ++still_reserved;
    }
    if (still_reserved == 0) break;
  }
  EXPECT_LE(waited, lease + step) << "worker a kept its waiting reservations";
  EXPECT_TRUE(Eventually([&] { return ran_on_b.load() == 4; }))
      << ran_on_b.load() << " of 4 waiting jobs ran on the idle worker";
  release.Notify();
}

TEST_F(JobEngineTest, PerOwnerLimitsAndKeysHoldAcrossTwoWorkers) {
  std::atomic<int> running_alice{0}, max_alice{0}, running_key{0}, max_key{0};
  absl::Notification release;
  auto track = [](std::atomic<int>& now, std::atomic<int>& max) {
    int n = ++now;
    int m = max.load();
    while (n > m && !max.compare_exchange_weak(m, n)) {
    }
  };
  auto setup = [&](Worker& w) {
    w.Register("deploy", [&](JobContext& ctx) -> absl::StatusOr<google::protobuf::Struct> {
      if (ctx.job().owner_id() == "alice") track(running_alice, max_alice);
      release.WaitForNotificationWithTimeout(absl::Seconds(20));
      if (ctx.job().owner_id() == "alice") --running_alice;
      return google::protobuf::Struct();
    });
    w.Register("build", [&](JobContext&) -> absl::StatusOr<google::protobuf::Struct> {
      track(running_key, max_key);
      release.WaitForNotificationWithTimeout(absl::Seconds(20));
      --running_key;
      return google::protobuf::Struct();
    });
  };
  WorkerOptions options;
  options.concurrency = 8;
  options.limits.per_owner = {{"deploy", 3}};
  Node a(db_, clock_), b(db_, clock_);
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    auto j = a.store->Enqueue(Demo("deploy"), fake_.Now());
    ids.push_back(j->id());
  }
  EnqueueRequest bobs = Demo("deploy");
  bobs.owner_id = "bob";
  ids.push_back(a.store->Enqueue(bobs, fake_.Now())->id());
  for (int i = 0; i < 3; ++i) {
    EnqueueRequest keyed = Demo("build");
    keyed.concurrency_key = "prj_1";
    ids.push_back(a.store->Enqueue(keyed, fake_.Now())->id());
  }
  a.StartWorker(options, setup);
  b.StartWorker(options, setup);
  JobEventLog bob_log(a.hub, ids[6]);
  a.worker->Poke();
  b.worker->Poke();
  ASSERT_NE(bob_log.WaitForState(v1::JOB_STATE_RUNNING).sequence(), 0);  // others' work flows
  // Alice's three allowed jobs start (reserved first, started by a free
  // handler: on a loaded machine that takes a moment).
  EXPECT_TRUE(Eventually([&] { return running_alice.load() == 3; }))
      << running_alice.load() << " of alice's 3 allowed jobs started";

  // Whatever the two workers did, a third claimer finds nothing allowed left.
  auto more = a.store->Claim("third", {"deploy", "build"}, options.limits, 10, absl::Seconds(30),
                             fake_.Now());
  ASSERT_TRUE(more.ok());
  EXPECT_TRUE(more->empty()) << more->size() << " more jobs were claimable";
  release.Notify();
  for (const auto& id : ids) {
    JobEventLog log(a.hub, id);
    if (a.store->Get(id)->state() == v1::JOB_STATE_SUCCEEDED) continue;
    a.worker->Poke();
    b.worker->Poke();
    ASSERT_NE(log.WaitForState(v1::JOB_STATE_SUCCEEDED).sequence(), 0) << id;
  }
  EXPECT_EQ(max_alice.load(), 3);
  EXPECT_EQ(max_key.load(), 1);
}

TEST_F(JobEngineTest, AnExpiredLeaseIsReapedAndTheJobRunsElsewhere) {
  Node node(db_, clock_);
  auto job = node.store->Enqueue(Demo("demo.noop"), fake_.Now());
  // A worker that starts it and then vanishes (as if killed).
  ASSERT_EQ(
      node.store->Claim("ghost", {"demo.noop"}, {}, 1, absl::Seconds(30), fake_.Now())->size(), 1u);
  auto claimed = node.store->Start("ghost", {job->id()}, absl::Seconds(30), fake_.Now());
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ(*node.store->ReapExpiredLeases(fake_.Now() + absl::Seconds(29)), 0);
  EXPECT_EQ(*node.store->ReapExpiredLeases(fake_.Now() + absl::Seconds(31)), 1);
  fake_.Advance(absl::Seconds(31));
  JobEventLog log(node.hub, job->id());
  node.StartWorker(WorkerOptions{}, RegisterDemoHandlers);
  node.worker->Poke();
  ASSERT_NE(log.WaitForState(v1::JOB_STATE_SUCCEEDED).sequence(), 0);
  // The ghost's late completion changes nothing.
  AttemptOutcome late{v1::JOB_STATE_FAILED, {}, absl::InternalError("late"), {}};
  EXPECT_FALSE(*node.store->Finish("ghost", (*claimed)[0], late, fake_.Now()));
  EXPECT_EQ(node.store->Get(job->id())->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(node.store->Get(job->id())->attempt(), 2);
}

TEST_F(JobEngineTest, PruningRemovesOnlyJobsThatEndedBeforeTheCutoff) {
  Node node(db_, clock_);
  auto old_job = node.store->Enqueue(Demo("demo.noop"), fake_.Now());
  ASSERT_TRUE(node.store->Cancel(old_job->id(), "alice", "", fake_.Now()).ok());
  fake_.Advance(absl::Hours(24 * 8));
  auto recent = node.store->Enqueue(Demo("demo.noop"), fake_.Now());
  ASSERT_TRUE(node.store->Cancel(recent->id(), "alice", "", fake_.Now()).ok());
  auto queued = node.store->Enqueue(Demo("demo.noop"), fake_.Now());
  EXPECT_EQ(*node.store->PruneFinished(fake_.Now() - absl::Hours(24 * 7)), 1);
  EXPECT_EQ(node.store->Get(old_job->id()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(node.store->Get(recent->id()).ok());
  EXPECT_TRUE(node.store->Get(queued->id()).ok());
  EXPECT_TRUE(node.store->ListEvents(old_job->id(), 0, 10)->empty());
}

TEST_F(JobEngineTest, AThousandSubscribersOfOneJobEachGetEveryEventOnceInOrder) {
  // Enough subscribers that the hub hands shares to its fan-out threads.
  auto pool = db_.NewPool(2);
  auto store = std::make_shared<PgJobStore>(pool);
  JobEventHub hub(db_.conninfo(), pool, /*fanout_threads=*/3);
  hub.Start();
  ASSERT_TRUE(hub.WaitUntilListening(absl::Seconds(10)));
  auto job = store->Enqueue(Demo("demo.noop"), fake_.Now());
  ASSERT_TRUE(job.ok());

  constexpr int kSubscribers = 1000;
  struct Seen {
    absl::Mutex mu;
    std::vector<int64_t> sequences;
  };
  std::vector<Seen> seen(kSubscribers);
  std::vector<uint64_t> handles;
  for (int i = 0; i < kSubscribers; ++i) {
    handles.push_back(hub.SubscribeJob(job->id(), job->last_event_sequence(),
                                       {[&seen, i](const std::shared_ptr<const v1::JobEvent>& e) {
                                          absl::MutexLock lock(&seen[i].mu);
                                          seen[i].sequences.push_back(e->sequence());
                                        },
                                        [] {}}));
  }
  ASSERT_EQ(store->Claim("w", {"demo.noop"}, {}, 1, absl::Seconds(30), fake_.Now())->size(), 1u);
  auto claimed = store->Start("w", {job->id()}, absl::Seconds(30), fake_.Now());
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 1u);
  for (int i = 0; i < 5; ++i) {
    v1::JobEvent e;
    e.set_type(v1::JOB_EVENT_TYPE_PROGRESS);
    e.mutable_progress()->set_percent(20 * (i + 1));
    ASSERT_TRUE(store->AppendEvent("w", job->id(), e, fake_.Now()).ok());
  }
  auto last = store->Get(job->id());
  ASSERT_TRUE(last.ok());
  std::vector<int64_t> expected;
  for (int64_t s = job->last_event_sequence() + 1; s <= last->last_event_sequence(); ++s) {
    expected.push_back(s);
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  for (int i = 0; i < kSubscribers; ++i) {
    while (absl::Now() < deadline) {
      {
        absl::MutexLock lock(&seen[i].mu);
        if (seen[i].sequences.size() >= expected.size()) break;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    absl::MutexLock lock(&seen[i].mu);
    ASSERT_EQ(seen[i].sequences, expected) << "subscriber " << i;
  }
  for (uint64_t h : handles) hub.Unsubscribe(h);
  hub.Stop();
}

}  // namespace
}  // namespace orchestrator::jobs
