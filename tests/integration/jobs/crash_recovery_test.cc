// Real orchestratord processes killed with SIGKILL (or stopped with SIGTERM)
// while they run jobs: the jobs must all complete, none may complete twice,
// and none is charged an attempt it never started.
//
// KILL_LOOP_ORCHESTRATORD=<path> runs the kill loop against another build
// (e.g. to measure the figures of an older engine).
#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "services/common/auth/mesh_identity.h"
#include "services/common/crypto/secret_box.h"
#include "services/jobs/store/job_event_hub.h"
#include "services/jobs/store/pg_job_store.h"
#include "tests/support/orchestratord_process.h"
#include "tests/support/test_database.h"

namespace orchestrator::jobs {
namespace {

// One orchestratord hosting the job engine with the demo handlers.
class WorkerProcess final {
 public:
  WorkerProcess(const std::string& conninfo, const std::string& dir, int index,
                const std::vector<std::string>& flags = {"--job_lease=1s", "--job_concurrency=4"})
      : process_(Args(conninfo, dir, flags), absl::StrCat(dir, "/orchestratord.", index, ".log")) {}

  void Kill() { process_.Kill(); }
  // SIGTERM, then waits for the exit; returns how long the process took.
  absl::Duration Terminate() { return process_.Signal(SIGTERM); }

 private:
  static std::vector<std::string> Args(const std::string& conninfo, const std::string& dir,
                                       const std::vector<std::string>& flags) {
    const char* bin = std::getenv("KILL_LOOP_ORCHESTRATORD");
    // The job engine, the component verifying tokens and the one it asks
    // about project ids; nothing of sessions or sandboxes.
    if (!std::filesystem::exists(dir + "/mesh.credential")) {
      std::ofstream(dir + "/mesh.credential") << MeshCredential::NewSecret() << "\n";
      std::ofstream(dir + "/secrets.key") << GenerateSecretKeyBase64() << "\n";
    }
    std::vector<std::string> args = {bin != nullptr ? bin : ORCHESTRATORD_BIN,
                                     "--services=admin,projects,jobs",
                                     "--mesh_credential_file=" + dir + "/mesh.credential",
                                     "--secrets_key_file=" + dir + "/secrets.key",
                                     "--demo_jobs",
                                     "--listen=127.0.0.1:0",
                                     "--log_level=warn",
                                     "--database_url=" + conninfo,
                                     "--bootstrap_token_file=" + dir + "/admin.token"};
    args.insert(args.end(), flags.begin(), flags.end());
    return args;
  }

  testing::OrchestratordProcess process_;
};

TEST(CrashRecovery, JobsSurviveTwentySigkilledWorkersAndCompleteOnce) {
  constexpr int kJobs = 40;
  constexpr int kKills = 20;
  testing::TestDatabase db;
  auto pool = db.NewPool(4);
  ASSERT_TRUE(db::ApplyMigrations(*pool, db::JobsMigrations()).ok());
  PgJobStore store(pool);
  const std::string dir = (std::filesystem::temp_directory_path() / NewId("crash_")).string();
  std::filesystem::create_directories(dir);

  // Watch every change, as another process would.
  absl::Mutex mu;
  int running_events = 0;
  std::set<std::string> succeeded;
  JobEventHub hub(db.conninfo(), pool);
  hub.SubscribeOwner(JobEventHub::OwnerSubscriber{
      "",
      [&](const JobNotice& n) {
        absl::MutexLock lock(&mu);
        if (n.state == v1::JOB_STATE_RUNNING && n.type == v1::JOB_EVENT_TYPE_STATE_CHANGED) {
          ++running_events;
        }
        if (n.state == v1::JOB_STATE_SUCCEEDED) succeeded.insert(n.job_id);
      },
      nullptr});
  hub.Start();
  ASSERT_TRUE(hub.WaitUntilListening(absl::Seconds(10)));

  for (int i = 0; i < kJobs; ++i) {
    EnqueueRequest r;
    r.kind = "demo.sleep";
    r.owner_id = "usr_crash";
    (*r.params.mutable_fields())["seconds"].set_number_value(0.4);
    (*r.params.mutable_fields())["steps"].set_number_value(2);
    r.max_attempts = 1000;  // kills are not the job's fault
    ASSERT_TRUE(store.Enqueue(r, absl::Now()).ok());
  }

  for (int kill = 0; kill < kKills; ++kill) {
    int before;
    {
      absl::MutexLock lock(&mu);
      before = running_events;
    }
    WorkerProcess worker(db.conninfo(), dir, kill);
    {
      // Kill it while it holds jobs: right after it starts one.
      absl::MutexLock lock(&mu);
      auto started = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
        return running_events > before || static_cast<int>(succeeded.size()) == kJobs;
      };
      ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&started), absl::Seconds(30)))
          << "worker " << kill << " never started a job; see " << dir;
    }
    worker.Kill();
  }

  WorkerProcess survivor(db.conninfo(), dir, kKills);
  {
    absl::MutexLock lock(&mu);
    auto all_done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return static_cast<int>(succeeded.size()) == kJobs;
    };
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all_done), absl::Seconds(120)))
        << succeeded.size() << " of " << kJobs << " jobs succeeded";
  }
  survivor.Kill();
  hub.Stop();

  auto done = pool->Exec(db::Statement{"done", "SELECT count(*) FROM jobs.jobs WHERE state = 3"});
  EXPECT_EQ(done->GetInt64(0, 0), kJobs);
  auto twice = pool->Exec(db::Statement{
      "twice",
      "SELECT count(*) FROM (SELECT job_id FROM jobs.events WHERE type = 1 AND "
      "body->>'toState' = 'JOB_STATE_SUCCEEDED' GROUP BY job_id HAVING count(*) <> 1) x"});
  EXPECT_EQ(twice->GetInt64(0, 0), 0) << "some job completed more than once";
  auto rerun =
      pool->Exec(db::Statement{"rerun", "SELECT count(*) FROM jobs.jobs WHERE attempt > 1"});
  EXPECT_GT(rerun->GetInt64(0, 0), 0) << "no kill interrupted a job: the test proved nothing";
  std::filesystem::remove_all(dir);
}

// Every job change as another process sees it.
class JobWatch final {
 public:
  explicit JobWatch(testing::TestDatabase& db, db::PoolPtr pool) : hub_(db.conninfo(), pool) {
    hub_.SubscribeOwner(JobEventHub::OwnerSubscriber{"",
                                                     [this](const JobNotice& n) {
                                                       if (n.type !=
                                                           v1::JOB_EVENT_TYPE_STATE_CHANGED)
                                                         return;
                                                       absl::MutexLock lock(&mu_);
                                                       ++changes_[n.state];
                                                       if (IsTerminal(n.state))
                                                         ended_.insert(n.job_id);
                                                     },
                                                     nullptr});
    hub_.Start();
    EXPECT_TRUE(hub_.WaitUntilListening(absl::Seconds(10)));
  }
  ~JobWatch() { hub_.Stop(); }

  // How many changes to `state` were seen so far.
  int Count(v1::JobState state) {
    absl::MutexLock lock(&mu_);
    return changes_[state];
  }
  // Waits until `n` changes to `state` were seen, or `ended` jobs ended.
  bool WaitFor(v1::JobState state, int n, int ended, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return changes_[state] >= n || static_cast<int>(ended_.size()) >= ended;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }

 private:
  JobEventHub hub_;
  absl::Mutex mu_;
  // Changes seen per state, and the jobs that ended.
  std::map<v1::JobState, int> changes_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> ended_ ABSL_GUARDED_BY(mu_);
};

absl::Time TimeOf(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

TEST(CrashRecovery, AKillChargesAnAttemptOnlyToTheJobsThatWereRunning) {
  // The loop, shortened: 40 jobs, a worker holding 4 running and the
  // rest claimed ahead, SIGKILLed 4 times. Jobs have the API's default of 3
  // attempts, so jobs charged for kills they never ran through would fail.
  constexpr int kJobs = 40;
  constexpr int kKills = 4;
  constexpr int kConcurrency = 4;
  constexpr absl::Duration kStep = absl::Milliseconds(200);
  testing::TestDatabase db;
  auto pool = db.NewPool(4);
  ASSERT_TRUE(db::ApplyMigrations(*pool, db::JobsMigrations()).ok());
  PgJobStore store(pool);
  const std::string dir = (std::filesystem::temp_directory_path() / NewId("kills_")).string();
  std::filesystem::create_directories(dir);
  JobWatch watch(db, pool);

  std::vector<std::string> ids;
  for (int i = 0; i < kJobs; ++i) {
    EnqueueRequest r;
    r.kind = "demo.sleep";
    r.owner_id = "usr_kills";
    (*r.params.mutable_fields())["seconds"].set_number_value(4 * absl::ToDoubleSeconds(kStep));
    (*r.params.mutable_fields())["steps"].set_number_value(4);
    r.max_attempts = 3;
    auto job = store.Enqueue(r, absl::Now());
    ASSERT_TRUE(job.ok());
    ids.push_back(job->id());
  }

  std::vector<absl::Time> kills;
  for (int kill = 0; kill < kKills; ++kill) {
    const int before = watch.Count(v1::JOB_STATE_SUCCEEDED);
    WorkerProcess worker(db.conninfo(), dir, kill);
    // Killed once it finished a round of jobs of its own and started more.
    ASSERT_TRUE(
        watch.WaitFor(v1::JOB_STATE_SUCCEEDED, before + kConcurrency, kJobs, absl::Seconds(30)))
        << "worker " << kill << " finished no job; see " << dir;
    kills.push_back(absl::Now());
    worker.Kill();
  }
  WorkerProcess survivor(db.conninfo(), dir, kKills);
  EXPECT_TRUE(watch.WaitFor(v1::JOB_STATE_SUCCEEDED, kJobs * 2, kJobs, absl::Seconds(60)))
      << "not every job ended; see " << dir;
  survivor.Kill();

  // From each job's history: how it ended, how often it succeeded, and the
  // attempts charged to it (lease expired) that it never ran: no progress,
  // and started longer before the kill than one step takes.
  int succeeded = 0, failed = 0, unfinished = 0, duplicated = 0, charged_never_started = 0;
  int attempts = 0;
  for (const auto& id : ids) {
    auto job = store.Get(id);
    ASSERT_TRUE(job.ok());
    attempts += job->attempt();
    if (job->state() == v1::JOB_STATE_SUCCEEDED)
      ++succeeded;
    else if (job->state() == v1::JOB_STATE_FAILED)
      ++failed;
    else
      ++unfinished;
    auto events = store.ListEvents(id, 0, 1000);
    ASSERT_TRUE(events.ok());
    int successes = 0;
    absl::Time running_since = absl::InfinitePast();
    bool progressed = false;
    for (const auto& e : *events) {
      if (e.type() == v1::JOB_EVENT_TYPE_PROGRESS) progressed = true;
      if (e.type() != v1::JOB_EVENT_TYPE_STATE_CHANGED) continue;
      const auto& change = e.state_changed();
      if (change.to_state() == v1::JOB_STATE_SUCCEEDED) ++successes;
      if (change.to_state() == v1::JOB_STATE_RUNNING) {
        running_since = TimeOf(e.create_time());
        progressed = false;
      } else if (change.from_state() == v1::JOB_STATE_RUNNING && !progressed &&
                 absl::StrContains(change.reason(), "lease expired")) {
        bool cut_short = false;
        for (absl::Time k : kills) {
          // A loaded machine may take a while to report a started job's
          // first step; a job prefetched as RUNNING (the old engine) sat
          // there for several jobs' time.
          cut_short |= k >= running_since && k - running_since < kStep + absl::Milliseconds(1500);
        }
        if (!cut_short) ++charged_never_started;
      }
    }
    if (successes > 1) ++duplicated;
  }
  const std::string figures =
      absl::StrCat("jobs=", kJobs, " kills=", kKills, " succeeded=", succeeded, " failed=", failed,
                   " lost=", unfinished, " duplicated=", duplicated,
                   " charged_never_started=", charged_never_started, " attempts=", attempts);
  std::printf("kill loop: %s\n", figures.c_str());
  ::testing::Test::RecordProperty("kill_loop", figures);
  EXPECT_EQ(succeeded, kJobs) << figures << "; see " << dir;
  EXPECT_EQ(duplicated, 0) << figures;
  EXPECT_EQ(charged_never_started, 0) << figures;
  // Each kill charges at most the jobs that were running.
  EXPECT_LE(attempts - kJobs, kKills * kConcurrency) << figures;
  EXPECT_GT(attempts, kJobs) << "no kill interrupted a job: the test proved nothing";
  std::filesystem::remove_all(dir);
}

TEST(CrashRecovery, SigtermGivesBackClaimedJobsAtOnceAndTheNextProcessRunsThem) {
  constexpr int kJobs = 10;
  constexpr absl::Duration kLease = absl::Seconds(30);
  testing::TestDatabase db;
  auto pool = db.NewPool(4);
  ASSERT_TRUE(db::ApplyMigrations(*pool, db::JobsMigrations()).ok());
  PgJobStore store(pool);
  const std::string dir = (std::filesystem::temp_directory_path() / NewId("term_")).string();
  std::filesystem::create_directories(dir);
  JobWatch watch(db, pool);
  for (int i = 0; i < kJobs; ++i) {
    EnqueueRequest r;
    r.kind = "demo.sleep";
    r.owner_id = "usr_term";
    (*r.params.mutable_fields())["seconds"].set_number_value(60);
    (*r.params.mutable_fields())["steps"].set_number_value(60);
    r.max_attempts = 3;
    ASSERT_TRUE(store.Enqueue(r, absl::Now()).ok());
  }
  // Two handlers: two jobs run, the other eight wait claimed by this process.
  WorkerProcess first(db.conninfo(), dir, 0,
                      {"--job_lease=30s", "--job_concurrency=2", "--drain_deadline=1s"});
  ASSERT_TRUE(watch.WaitFor(v1::JOB_STATE_RUNNING, 2, kJobs, absl::Seconds(30)));
  const int running_before = watch.Count(v1::JOB_STATE_RUNNING);
  const absl::Time signalled = absl::Now();
  const absl::Duration stopping = first.Terminate();
  EXPECT_LT(stopping, absl::Seconds(5)) << "a 1 s drain took " << stopping;

  WorkerProcess next(db.conninfo(), dir, 1, {"--job_lease=30s", "--job_concurrency=10"});
  ASSERT_TRUE(
      watch.WaitFor(v1::JOB_STATE_RUNNING, running_before + kJobs, kJobs + 1, absl::Seconds(20)))
      << "the next process did not start every job; see " << dir;
  const absl::Duration all_running = absl::Now() - signalled;
  EXPECT_LT(all_running, kLease / 3) << "the jobs waited for a lease to expire";
  next.Kill();

  // Only the two jobs that were running were charged, and given back as such.
  auto attempts = pool->Exec(db::Statement{"attempts", "SELECT sum(attempt) FROM jobs.jobs"});
  EXPECT_EQ(attempts->GetInt64(0, 0), kJobs + 2);
  auto released =
      pool->Exec(db::Statement{"released",
                               "SELECT count(*) FROM jobs.events WHERE body->>'reason' = "
                               "'released by a worker shutting down'"});
  EXPECT_EQ(released->GetInt64(0, 0), 2);
  auto expired = pool->Exec(db::Statement{
      "expired", "SELECT count(*) FROM jobs.events WHERE body->>'reason' LIKE 'lease expired%'"});
  EXPECT_EQ(expired->GetInt64(0, 0), 0);
  std::printf("sigterm: exit after %s, every job running again %s after the signal\n",
              absl::FormatDuration(stopping).c_str(), absl::FormatDuration(all_running).c_str());
  std::filesystem::remove_all(dir);
}

// A TCP port nobody listens on now.
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(CrashRecovery, SigtermWithAWatchOpenAndAJobRunningTakesOneDrainDeadline) {
  constexpr absl::Duration kDrain = absl::Seconds(2);
  testing::TestDatabase db;
  auto pool = db.NewPool(4);
  ASSERT_TRUE(db::ApplyMigrations(*pool, db::JobsMigrations()).ok());
  PgJobStore store(pool);
  const std::string dir = (std::filesystem::temp_directory_path() / NewId("drain_")).string();
  std::filesystem::create_directories(dir);
  JobWatch watch(db, pool);
  EnqueueRequest r;
  r.kind = "demo.sleep";
  r.owner_id = "usr_drain";
  (*r.params.mutable_fields())["seconds"].set_number_value(60);
  (*r.params.mutable_fields())["steps"].set_number_value(60);
  auto job = store.Enqueue(r, absl::Now());
  ASSERT_TRUE(job.ok());
  const int port = FreePort();
  WorkerProcess server(
      db.conninfo(), dir, 0,
      {"--job_lease=30s", "--drain_deadline=2s", absl::StrCat("--listen=127.0.0.1:", port)});
  ASSERT_TRUE(watch.WaitFor(v1::JOB_STATE_RUNNING, 1, 1, absl::Seconds(30)));

  // An admin's WatchJob stream on the running job, open when SIGTERM comes.
  std::ifstream token_file(dir + "/admin.token");
  std::string token;
  std::getline(token_file, token);
  auto stub = v1::JobService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + token);
  v1::WatchJobRequest req;
  req.set_job_id(job->id());
  auto reader = stub->WatchJob(&ctx, req);
  v1::WatchJobResponse first;
  ASSERT_TRUE(reader->Read(&first)) << reader->Finish().error_message();
  std::thread drain_reader([&] {
    v1::WatchJobResponse more;
    while (reader->Read(&more)) {
    }
  });
  const absl::Duration stopping = server.Terminate();
  drain_reader.join();
  (void)reader->Finish();
  EXPECT_LT(stopping, kDrain + absl::Seconds(1))
      << "the gRPC and job drains ran one after the other";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace orchestrator::jobs
