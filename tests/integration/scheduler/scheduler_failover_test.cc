// Two orchestratord processes hosting the scheduler over one database, as
// two replicas would run: every due time runs exactly once while one
// leads; SIGKILL the leader and the other leads within the lease's TTL +
// 1 s, running no due time twice (the ones in between are counted missed,
// not made up twice).
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "orchestrator/scheduler/v1/scheduler.grpc.pb.h"
#include "services/common/auth/mesh_identity.h"
#include "services/common/crypto/secret_box.h"
#include "tests/support/free_port.h"
#include "tests/support/orchestratord_process.h"
#include "tests/support/test_database.h"

namespace orchestrator::scheduler {
namespace {

constexpr char kPrune[] = "jobs.prune";
constexpr int kLeaseTtlSeconds = 3;

// One replica: the scheduler with the job engine that runs its task.
class Replica final {
 public:
  Replica(const std::string& conninfo, const std::string& dir, int index)
      : port_(testing::FreePort()),
        process_(
            {ORCHESTRATORD_BIN, "--services=admin,projects,jobs,scheduler",
             absl::StrCat("--listen=127.0.0.1:", port_), "--log_level=info",
             "--database_url=" + conninfo, "--mesh_credential_file=" + dir + "/mesh.credential",
             "--secrets_key_file=" + dir + "/secrets.key",
             "--bootstrap_token_file=" + dir + "/admin.token",
             absl::StrCat("--scheduler_lease_ttl=", kLeaseTtlSeconds, "s"), "--job_lease=2s"},
            absl::StrCat(dir, "/orchestratord.", index, ".log")),
        channel_(grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_),
                                     grpc::InsecureChannelCredentials())) {}

  bool AwaitServing(absl::Duration timeout) {
    auto health = grpc::health::v1::Health::NewStub(channel_);
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      grpc::ClientContext ctx;
      ctx.set_wait_for_ready(true);
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(500)));
      grpc::health::v1::HealthCheckResponse resp;
      if (health->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp).ok() &&
          resp.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
        return true;
      }
    }
    return false;
  }
  void Kill() { process_.Kill(); }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

 private:
  int port_;
  testing::OrchestratordProcess process_;
  std::shared_ptr<grpc::Channel> channel_;
};

std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->AddMetadata("authorization", "Bearer " + token);
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  return ctx;
}

class SchedulerFailoverTest : public ::testing::Test {
 protected:
  SchedulerFailoverTest()
      : dir_((std::filesystem::temp_directory_path() / NewId("scheduler_failover_")).string()) {
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ + "/mesh.credential") << MeshCredential::NewSecret() << "\n";
    std::ofstream(dir_ + "/secrets.key") << GenerateSecretKeyBase64() << "\n";
    pool_ = db_.NewPool(2);
  }
  ~SchedulerFailoverTest() override {
    replicas_.clear();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // The lease's holder's pid, and when it took the lease.
  std::pair<int, absl::Time> Leader() {
    constexpr db::Statement kLease{
        "test_lease",
        "SELECT holder, (extract(epoch FROM acquire_time) * 1000000)::bigint, "
        "expire_time > now() FROM scheduler.leases WHERE name = 'scheduler'"};
    auto r = pool_->Exec(kLease);
    if (!r.ok() || r->rows() == 0 || !r->GetBool(0, 2)) return {0, absl::InfinitePast()};
    std::vector<std::string> parts = absl::StrSplit(r->Get(0, 0), '/');
    int pid = 0;
    if (parts.size() == 3) (void)absl::SimpleAtoi(parts[1], &pid);
    return {pid, absl::FromUnixMicros(r->GetInt64(0, 1))};
  }

  // Every scheduled run: due time (s) → how many runs.
  std::map<int64_t, int> ScheduledRuns() {
    constexpr db::Statement kRuns{
        "test_runs",
        "SELECT extract(epoch FROM scheduled_time)::bigint, count(*) FROM scheduler.runs "
        "WHERE task_id = $1 AND scheduled_time IS NOT NULL GROUP BY 1 ORDER BY 1"};
    std::map<int64_t, int> out;
    auto r = pool_->Exec(kRuns, {kPrune});
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return out;
    for (int i = 0; i < r->rows(); ++i)
      out[r->GetInt64(i, 0)] = static_cast<int>(r->GetInt64(i, 1));
    return out;
  }

  void AwaitRuns(size_t n, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (ScheduledRuns().size() < n && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(100));
    }
    ASSERT_GE(ScheduledRuns().size(), n) << "see " << dir_;
  }

  testing::TestDatabase db_;
  db::PoolPtr pool_;
  std::string dir_;
  std::vector<std::unique_ptr<Replica>> replicas_;
};

TEST_F(SchedulerFailoverTest, EachTickRunsOnceAndTheOtherReplicaLeadsWithinTheLeaseAfterSigkill) {
  // The first applies the schema and writes the admin token; then the second.
  for (int i = 0; i < 2; ++i) {
    replicas_.push_back(std::make_unique<Replica>(db_.conninfo(), dir_, i));
    ASSERT_TRUE(replicas_.back()->AwaitServing(absl::Seconds(60))) << "see " << dir_;
  }
  std::string admin;
  std::getline(std::ifstream(dir_ + "/admin.token"), admin);
  auto stub = v1::SchedulerService::NewStub(replicas_[1]->channel());
  v1::UpdateTaskScheduleRequest every;
  every.set_task_id(kPrune);
  every.mutable_interval()->set_seconds(1);
  v1::UpdateTaskScheduleResponse updated;
  ASSERT_TRUE(stub->UpdateTaskSchedule(Ctx(admin).get(), every, &updated).ok());

  AwaitRuns(6, absl::Seconds(30));
  auto [leader_pid, led_since] = Leader();
  ASSERT_NE(leader_pid, 0);
  // While one replica leads: once per due time, none left out.
  auto before = ScheduledRuns();
  for (const auto& [due, count] : before) EXPECT_EQ(count, 1) << "due time " << due;
  EXPECT_EQ(before.rbegin()->first - before.begin()->first + 1, static_cast<int64_t>(before.size()))
      << "a due time was left out while a replica led";

  // SIGKILL the leader (whichever replica it is).
  const absl::Time killed = absl::Now();
  ASSERT_EQ(::kill(leader_pid, SIGKILL), 0);
  absl::Time took_over = absl::InfinitePast();
  int new_leader = 0;
  while (absl::Now() < killed + absl::Seconds(kLeaseTtlSeconds + 10)) {
    auto [pid, since] = Leader();
    if (pid != 0 && pid != leader_pid) {
      new_leader = pid;
      took_over = since;
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_NE(new_leader, 0) << "no replica took the lease over; see " << dir_;
  const absl::Duration failover = took_over - killed;
  EXPECT_LE(failover, absl::Seconds(kLeaseTtlSeconds + 1)) << "failover took " << failover;

  // The survivor goes on: ticks after the failover, each once; the ones
  // no replica led for are missed, not run late twice.
  const size_t had = ScheduledRuns().size();
  AwaitRuns(had + 4, absl::Seconds(30));
  auto after = ScheduledRuns();
  for (const auto& [due, count] : after) EXPECT_EQ(count, 1) << "due time " << due << " ran twice";
  v1::GetTaskRequest get;
  get.set_task_id(kPrune);
  v1::GetTaskResponse task;
  // Ask a replica still alive: the new leader's.
  for (auto& r : replicas_) {
    auto s = v1::SchedulerService::NewStub(r->channel());
    if (s->GetTask(Ctx(admin).get(), get, &task).ok()) break;
  }
  const int64_t span = after.rbegin()->first - after.begin()->first + 1;
  EXPECT_EQ(span, static_cast<int64_t>(after.size()) + task.task().missed_run_count())
      << "every due time either ran once or was counted missed";
  EXPECT_LE(task.task().missed_run_count(), kLeaseTtlSeconds + 2);
  std::cout << "failover after SIGKILL: " << failover << " (lease TTL " << kLeaseTtlSeconds
            << "s); missed due times: " << task.task().missed_run_count() << "\n";

  // The unique index on (task, due time) is only the last guard: no
  // replica even tried a due time another had run (the lease's fence held),
  // each due time has exactly one job, and the lease changed hands once.
  for (int i = 0; i < 2; ++i) {
    std::ifstream log(absl::StrCat(dir_, "/orchestratord.", i, ".log"));
    std::string line;
    while (std::getline(log, line)) {
      EXPECT_EQ(line.find("already ran its run due at"), std::string::npos) << line;
    }
  }
  constexpr db::Statement kJobsPerDue{
      "test_jobs_per_due",
      "SELECT count(*), count(DISTINCT params->>'scheduled_time') FROM jobs.jobs "
      "WHERE kind = $1 AND params ? 'scheduled_time'"};
  auto per_due = pool_->Exec(kJobsPerDue, {kPrune});
  ASSERT_TRUE(per_due.ok());
  EXPECT_EQ(per_due->GetInt64(0, 0), per_due->GetInt64(0, 1)) << "a due time has two jobs";
  EXPECT_EQ(per_due->GetInt64(0, 0), static_cast<int64_t>(ScheduledRuns().size()));
  constexpr db::Statement kTerm{"test_term",
                                "SELECT term FROM scheduler.leases WHERE name = 'scheduler'"};
  auto term = pool_->Exec(kTerm);
  ASSERT_TRUE(term.ok());
  EXPECT_EQ(term->GetInt64(0, 0), 2) << "one leader, then the other";

  // Every run's job ran (a job the killed replica held is retried by the
  // survivor once its lease lapses).
  constexpr db::Statement kUnfinished{
      "test_unfinished",
      "SELECT count(*) FROM scheduler.runs r JOIN jobs.jobs j ON j.id = r.job_id "
      "WHERE r.task_id = $1 AND j.state <> 3"};
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  int64_t unfinished = -1;
  while (absl::Now() < deadline) {
    auto r = pool_->Exec(kUnfinished, {kPrune});
    ASSERT_TRUE(r.ok());
    unfinished = r->GetInt64(0, 0);
    if (unfinished <= 1) break;  // the latest may still be running
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_LE(unfinished, 1) << "runs whose jobs did not succeed; see " << dir_;
}

}  // namespace
}  // namespace orchestrator::scheduler
