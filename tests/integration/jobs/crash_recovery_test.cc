// Real orchestratord processes killed with SIGKILL while they run jobs: the
// jobs must all complete, and none may complete twice.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "services/common/crypto/secret_box.h"
#include "services/jobs/store/job_event_hub.h"
#include "services/jobs/store/pg_job_store.h"
#include "tests/support/test_database.h"

namespace orchestrator::jobs {
namespace {

// One orchestratord hosting the job engine with the demo handlers.
class WorkerProcess final {
 public:
  WorkerProcess(const std::string& conninfo, const std::string& dir, int index) {
    std::vector<std::string> args = {ORCHESTRATORD_BIN,
                                     "--services=admin,jobs",
                                     "--demo_jobs",
                                     "--job_lease=1s",
                                     "--job_concurrency=4",
                                     "--listen=127.0.0.1:0",
                                     "--log_level=warn",
                                     "--database_url=" + conninfo,
                                     "--bootstrap_token_file=" + dir + "/admin.token"};
    const std::string log = absl::StrCat(dir, "/orchestratord.", index, ".log");
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~WorkerProcess() { Kill(); }

  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
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

}  // namespace
}  // namespace orchestrator::jobs
