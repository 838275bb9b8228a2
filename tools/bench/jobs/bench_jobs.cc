// The job engine's side of tools/bench/jobs (see README.md there). Each
// scenario prints one JSON line; `run` puts them next to the peers' numbers.
//
//   bench_jobs s1 --jobs N [--workers W --concurrency C --batch B]
//   bench_jobs s3 [--jobs 1000]
//   bench_jobs s4 [--jobs 100 --lease_ms 5000]
//   bench_jobs s5 --orchestratord PATH [--streams 10000 --events 10]
//   bench_jobs s6 --orchestratord PATH [--concurrency 8 --lease_ms 3000]
// The database comes from the PG* environment; each scenario resets the
// jobs schema in it.
#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "services/common/db/migrations.h"
#include "services/common/db/pool.h"
#include "services/jobs/engine/worker.h"
#include "services/jobs/store/job_event_hub.h"
#include "services/jobs/store/pg_job_store.h"
#include "spdlog/spdlog.h"

namespace orchestrator::jobs {
namespace {

std::map<std::string, std::string> Args(int argc, char** argv) {
  std::map<std::string, std::string> out;
  for (int i = 2; i + 1 < argc; i += 2) out[std::string(argv[i]).substr(2)] = argv[i + 1];
  return out;
}

int Int(const std::map<std::string, std::string>& a, const std::string& k, int fallback) {
  int v = fallback;
  if (auto it = a.find(k); it != a.end()) (void)absl::SimpleAtoi(it->second, &v);
  return v;
}

db::PoolPtr Pool(int size) { return std::make_shared<db::Pool>(db::PoolOptions{"", size}); }

void ResetSchema() {
  auto pool = Pool(1);
  // admin too: the S5 servers bootstrap a fresh admin token on an empty install.
  // Named apart: the pool prepares statements by name.
  auto dropped = pool->Exec(db::Statement{"drop_admin", "DROP SCHEMA IF EXISTS admin CASCADE"});
  if (dropped.ok()) {
    dropped = pool->Exec(db::Statement{"drop_jobs", "DROP SCHEMA IF EXISTS jobs CASCADE"});
  }
  if (!dropped.ok() || !db::ApplyMigrations(*pool, db::JobsMigrations()).ok()) {
    std::fprintf(stderr, "bench_jobs: cannot reset the jobs schema\n");
    std::exit(1);
  }
}

// Loads n queued jobs exactly as Enqueue leaves them, in one statement.
void Load(int n, const std::string& kind, const std::string& owner) {
  auto pool = Pool(1);
  auto r = pool->Exec(
      db::Statement{"",
                    "WITH j AS (INSERT INTO jobs.jobs (id, kind, owner_id, run_after, "
                    "create_time, update_time, last_event_sequence, max_attempts) SELECT 'job_' "
                    "|| g, $2, $3, now(), now(), now(), 1, 1000 FROM generate_series(1, $1::int) g "
                    "RETURNING id, create_time) INSERT INTO jobs.events (job_id, sequence, type, "
                    "create_time, body) SELECT id, 1, 1, create_time, "
                    "'{\"toState\":\"JOB_STATE_QUEUED\"}' FROM j"},
      {std::to_string(n), kind, owner});
  if (!r.ok()) {
    std::fprintf(stderr, "bench_jobs: load failed: %s\n", r.status().ToString().c_str());
    std::exit(1);
  }
  (void)pool->Exec(db::Statement{"", "ANALYZE jobs.jobs"});
}

// Counts jobs reaching a state, from the notifications every process sees.
class StateCounter {
 public:
  StateCounter(JobEventHub& hub, v1::JobState state) : hub_(hub) {
    handle_ = hub_.SubscribeOwner(JobEventHub::OwnerSubscriber{
        "",
        [this, state](const JobNotice& n) {
          if (n.state != state || n.type != v1::JOB_EVENT_TYPE_STATE_CHANGED) return;
          absl::MutexLock lock(&mu_);
          ++count_;
        },
        nullptr});
  }
  ~StateCounter() { hub_.Unsubscribe(handle_); }
  bool WaitFor(int n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return count_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }

 private:
  JobEventHub& hub_;
  uint64_t handle_;
  absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
};

struct Node {
  explicit Node(int pool_size)
      : pool(Pool(pool_size)), store(std::make_shared<PgJobStore>(pool)), hub("", pool) {
    hub.Start();
    hub.WaitUntilListening(absl::Seconds(10));
  }
  db::PoolPtr pool;
  std::shared_ptr<PgJobStore> store;
  JobEventHub hub;
};

absl::StatusOr<google::protobuf::Struct> Noop(JobContext&) { return google::protobuf::Struct(); }

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * v.size()));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

int S1(const std::map<std::string, std::string>& a) {
  const int n = Int(a, "jobs", 100000), workers = Int(a, "workers", 2);
  const int concurrency = Int(a, "concurrency", 16), batch = Int(a, "batch", 64);
  ResetSchema();
  Load(n, "demo.noop", "bench");
  std::vector<std::unique_ptr<Node>> nodes;
  std::vector<std::unique_ptr<Worker>> running;
  for (int i = 0; i < workers; ++i) {
    nodes.push_back(std::make_unique<Node>(4));
    WorkerOptions o;
    o.concurrency = concurrency;
    o.claim_batch = batch;
    running.push_back(std::make_unique<Worker>(nodes.back()->store, &nodes.back()->hub, o));
    running.back()->Register("demo.noop", Noop);
  }
  const absl::Time start = absl::Now();
  for (auto& w : running) {
    w->Start();
    w->Poke();
  }
  // Done when the database says no job is left unfinished (committed),
  // checked every 50 ms with an index probe rather than a count.
  auto probe = Pool(1);
  bool ok = false;
  while (absl::Now() - start < absl::Minutes(10)) {
    auto r = probe->Exec(db::Statement{
        "left",
        "SELECT EXISTS (SELECT 1 FROM jobs.jobs WHERE state = 1) OR EXISTS (SELECT 1 FROM "
        "jobs.jobs WHERE state = 2)"});
    if (r.ok() && !r->GetBool(0, 0)) {
      ok = true;
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  for (auto& w : running) w->Stop();
  std::printf(
      "{\"scenario\":\"S1\",\"system\":\"orchestrator\",\"jobs\":%d,\"workers\":%d,"
      "\"concurrency\":%d,\"batch\":%d,\"seconds\":%.3f,\"jobs_per_sec\":%.0f,\"complete\":%s}\n",
      n, workers, concurrency, batch, seconds, n / seconds, ok ? "true" : "false");
  return ok ? 0 : 1;
}

int S3(const std::map<std::string, std::string>& a) {
  const int n = Int(a, "jobs", 1000), warmup = 20;
  ResetSchema();
  Node node(4);
  absl::Mutex mu;
  absl::Time started = absl::InfinitePast();
  WorkerOptions o;
  o.concurrency = 4;
  Worker worker(node.store, &node.hub, o);
  worker.Register("bench.latency", [&](JobContext&) -> absl::StatusOr<google::protobuf::Struct> {
    absl::MutexLock lock(&mu);
    started = absl::Now();
    return google::protobuf::Struct();
  });
  worker.Start();
  Node client(2);
  std::vector<double> ms;
  for (int i = 0; i < n + warmup; ++i) {
    StateCounter done(client.hub, v1::JOB_STATE_SUCCEEDED);
    EnqueueRequest r;
    r.kind = "bench.latency";
    r.owner_id = "bench";
    const absl::Time before = absl::Now();
    if (!client.store->Enqueue(r, before).ok()) return 1;
    if (!done.WaitFor(1, absl::Seconds(10))) return 1;
    absl::Time handler_start;
    {
      absl::MutexLock lock(&mu);
      handler_start = started;
    }
    if (i >= warmup) ms.push_back(absl::ToDoubleMilliseconds(handler_start - before));
    absl::SleepFor(absl::Milliseconds(10));  // idle again, as in the peer's S3
  }
  worker.Stop();
  std::printf(
      "{\"scenario\":\"S3\",\"system\":\"orchestrator\",\"jobs\":%d,\"p50_ms\":%.2f,"
      "\"p99_ms\":%.2f}\n",
      n, Percentile(ms, 50), Percentile(ms, 99));
  return 0;
}

// A worker process that claims jobs and holds them until it is killed.
int Hold(const std::map<std::string, std::string>& a) {
  Node node(4);
  WorkerOptions o;
  o.concurrency = Int(a, "jobs", 100);
  o.claim_batch = o.concurrency;
  o.lease = absl::Milliseconds(Int(a, "lease_ms", 5000));
  o.heartbeat = o.lease / 3;
  Worker worker(node.store, &node.hub, o);
  worker.Register("bench.hold", [](JobContext& ctx) -> absl::StatusOr<google::protobuf::Struct> {
    ctx.Sleep(absl::Hours(1));
    return absl::UnavailableError("stopped");
  });
  worker.Start();
  worker.Poke();
  pause();
  return 0;
}

int S4(const std::map<std::string, std::string>& a, const char* self) {
  const int n = Int(a, "jobs", 100), lease_ms = Int(a, "lease_ms", 5000);
  ResetSchema();
  Load(n, "bench.hold", "bench");
  Node node(4);
  StateCounter running(node.hub, v1::JOB_STATE_RUNNING);
  StateCounter done(node.hub, v1::JOB_STATE_SUCCEEDED);
  pid_t child = fork();
  if (child == 0) {
    std::string jobs = std::to_string(n), lease = std::to_string(lease_ms);
    execl(self, self, "hold", "--jobs", jobs.c_str(), "--lease_ms", lease.c_str(), nullptr);
    _exit(127);
  }
  if (!running.WaitFor(n, absl::Seconds(60))) {
    kill(child, SIGKILL);
    return 1;
  }
  kill(child, SIGKILL);
  const absl::Time killed = absl::Now();
  waitpid(child, nullptr, 0);
  WorkerOptions o;
  o.concurrency = n;
  o.claim_batch = n;
  o.reap = absl::Milliseconds(100);
  o.poll = absl::Milliseconds(100);
  Worker rescuer(node.store, &node.hub, o);
  rescuer.Register("bench.hold", Noop);
  rescuer.Start();
  const bool ok = done.WaitFor(n, absl::Seconds(120));
  const double seconds = absl::ToDoubleSeconds(absl::Now() - killed);
  rescuer.Stop();
  std::printf(
      "{\"scenario\":\"S4\",\"system\":\"orchestrator\",\"jobs\":%d,\"lease_s\":%.1f,"
      "\"recovery_s\":%.3f,\"complete\":%s}\n",
      n, lease_ms / 1000.0, seconds, ok ? "true" : "false");
  return ok ? 0 : 1;
}

// Recovery after SIGKILL with the queue full: an orchestratord runs
// `concurrency` long jobs and holds its full local queue (claim batch 32)
// besides; it is killed, and a rescuer runs them all. Measured: seconds
// from the kill until every orphaned job ran again, and the attempts
// charged to jobs the killed process never started (no progress event).
// Jobs it had not claimed run at once; the time is the orphans'.
int S6(const std::map<std::string, std::string>& a) {
  const int concurrency = Int(a, "concurrency", 8), lease_ms = Int(a, "lease_ms", 3000);
  const int n = concurrency + 32;  // orchestratord's claim batch
  const std::string orchestratord = a.count("orchestratord") ? a.at("orchestratord") : "";
  ResetSchema();
  char dir[] = "/tmp/bench_s6.XXXXXX";
  if (!mkdtemp(dir)) return 1;
  Node node(4);
  for (int i = 0; i < n; ++i) {
    EnqueueRequest r;
    r.kind = "demo.sleep";
    r.owner_id = "bench";
    (*r.params.mutable_fields())["seconds"].set_number_value(600);
    (*r.params.mutable_fields())["steps"].set_number_value(1000);
    r.max_attempts = 3;
    if (auto job = node.store->Enqueue(r, absl::Now()); !job.ok()) {
      std::fprintf(stderr, "S6: enqueue failed: %s\n", job.status().ToString().c_str());
      return 1;
    }
  }
  absl::Mutex mu;
  std::set<std::string> progressed;
  const uint64_t handle = node.hub.SubscribeOwner(
      JobEventHub::OwnerSubscriber{"",
                                   [&](const JobNotice& notice) {
                                     if (notice.type != v1::JOB_EVENT_TYPE_PROGRESS) return;
                                     absl::MutexLock lock(&mu);
                                     progressed.insert(notice.job_id);
                                   },
                                   nullptr});
  StateCounter done(node.hub, v1::JOB_STATE_SUCCEEDED);
  pid_t server = fork();
  if (server == 0) {
    const std::string token = absl::StrCat("--bootstrap_token_file=", dir, "/admin.token");
    const std::string concurrency_flag = absl::StrCat("--job_concurrency=", concurrency);
    const std::string lease_flag = absl::StrCat("--job_lease=", lease_ms, "ms");
    execl(orchestratord.c_str(), orchestratord.c_str(), "--services=admin,jobs", "--demo_jobs",
          "--listen=127.0.0.1:0", "--log_level=warn", token.c_str(), concurrency_flag.c_str(),
          lease_flag.c_str(), nullptr);
    _exit(127);
  }
  bool all_started;
  {
    absl::MutexLock lock(&mu);
    auto started = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return static_cast<int>(progressed.size()) >= concurrency;
    };
    all_started = mu.AwaitWithTimeout(absl::Condition(&started), absl::Seconds(60));
  }
  kill(server, SIGKILL);
  const absl::Time killed = absl::Now();
  waitpid(server, nullptr, 0);
  node.hub.Unsubscribe(handle);
  auto held = node.pool->Exec(db::Statement{
      "s6_orphaned",
      "SELECT count(*) FROM jobs.jobs WHERE state IN (1, 2) AND lease_owner IS NOT NULL"});
  const int64_t orphaned = held.ok() ? held->GetInt64(0, 0) : -1;
  if (!all_started) {
    std::fprintf(stderr, "S6: orchestratord did not start %d jobs\n", concurrency);
    return 1;
  }
  int started_before_kill;
  {
    absl::MutexLock lock(&mu);
    started_before_kill = static_cast<int>(progressed.size());
  }
  WorkerOptions o;
  o.concurrency = n;
  o.claim_batch = n;
  o.lease = absl::Milliseconds(lease_ms);
  o.reap = absl::Milliseconds(100);
  o.poll = absl::Milliseconds(100);
  Worker rescuer(node.store, &node.hub, o);
  rescuer.Register("demo.sleep", Noop);
  rescuer.Start();
  const bool ok = done.WaitFor(n, absl::Seconds(120));
  const double seconds = absl::ToDoubleSeconds(absl::Now() - killed);
  rescuer.Stop();
  auto attempts =
      node.pool->Exec(db::Statement{"s6_attempts", "SELECT sum(attempt) FROM jobs.jobs"});
  const int64_t charged = attempts.ok() ? attempts->GetInt64(0, 0) : -1;
  // Each job ran once more; the ones started before the kill once before.
  const int64_t never_started = charged - n - started_before_kill;
  std::printf(
      "{\"scenario\":\"S6\",\"system\":\"orchestrator\",\"jobs\":%d,\"orphaned\":%lld,"
      "\"started_before_kill\":%d,"
      "\"lease_s\":%.1f,\"recovery_s\":%.3f,\"attempts\":%lld,"
      "\"attempts_charged_never_started\":%lld,\"complete\":%s}\n",
      n, static_cast<long long>(orphaned), started_before_kill, lease_ms / 1000.0, seconds,
      static_cast<long long>(charged), static_cast<long long>(never_started),
      ok ? "true" : "false");
  std::printf(
      "\n| S6: SIGKILL with a full queue | measured | target | |\n|---|---|---|---|\n"
      "| every orphaned job ran again after | %.2f s | <= lease + 1 s (%.1f s) | %s |\n"
      "| attempts charged to never-started jobs | %lld of %d | 0 | %s |\n",
      seconds, lease_ms / 1000.0 + 1, seconds <= lease_ms / 1000.0 + 1 ? "pass" : "**fail**",
      static_cast<long long>(never_started), orphaned - started_before_kill,
      never_started == 0 ? "pass" : "**fail**");
  return ok ? 0 : 1;
}

long RssKiB(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

// One WatchJob stream, callback style: records delivery latency per event.
class Stream final : public grpc::ClientReadReactor<v1::WatchJobResponse> {
 public:
  Stream(v1::JobService::Stub* stub, const std::string& token, const std::string& job,
         std::atomic<int>* first, std::atomic<int>* ended)
      : first_(first), ended_(ended) {
    ctx_.AddMetadata("authorization", "Bearer " + token);
    req_.set_job_id(job);
    stub->async()->WatchJob(&ctx_, &req_, this);
    StartRead(&resp_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    const double ms = absl::ToDoubleMilliseconds(
        absl::Now() -
        absl::FromUnixMicros(google::protobuf::util::TimeUtil::TimestampToMicroseconds(
            resp_.event().create_time())));
    if (resp_.event().sequence() == 1) {
      ++*first_;
    } else if (resp_.event().type() == v1::JOB_EVENT_TYPE_PROGRESS) {
      latencies_.push_back(ms);
    }
    StartRead(&resp_);
  }
  void OnDone(const grpc::Status& status) override {
    if (!status.ok()) {
      static absl::Mutex mu(absl::kConstInit);
      static int reported = 0;
      absl::MutexLock lock(&mu);
      if (reported++ < 3) {
        std::fprintf(stderr, "S5: a stream ended: %d %s\n", status.error_code(),
                     status.error_message().c_str());
      }
    }
    ++*ended_;
  }
  const std::vector<double>& latencies() const { return latencies_; }

 private:
  grpc::ClientContext ctx_;
  v1::WatchJobRequest req_;
  v1::WatchJobResponse resp_;
  std::vector<double> latencies_;
  std::atomic<int>* first_;
  std::atomic<int>* ended_;
};

// An orchestratord hosting admin and jobs on 127.0.0.1:port, writing its
// bootstrap token to token_file.
pid_t StartServer(const std::string& orchestratord, int port, const std::string& token_file) {
  pid_t server = fork();
  if (server == 0) {
    std::string listen = absl::StrCat("--listen=127.0.0.1:", port);
    std::string token = "--bootstrap_token_file=" + token_file;
    execl(orchestratord.c_str(), orchestratord.c_str(), "--services=admin,jobs", listen.c_str(),
          token.c_str(), "--log_level=warn", "--executor_threads=4",
          // One token drives the whole load: measured here is the engine, not the limits.
          "--rate_limit_per_token=0", "--rate_limit_per_user=0", nullptr);
    _exit(127);
  }
  return server;
}

// 64 distinct connections to the server (streams spread over them).
std::vector<std::shared_ptr<grpc::Channel>> Channels(int port) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < 64; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("bench.channel", i);  // distinct connections
    channels.push_back(grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                                 grpc::InsecureChannelCredentials(), args));
  }
  return channels;
}

// The same server with N idle grpc.health.v1.Health/Watch streams: what a
// server-streaming call costs in this gRPC build with none of our code in it.
// On SIGTERM the server's health service turns NOT_SERVING and tells every
// watcher: gRPC's own fan-out of one event to all of them.
class HealthStream final : public grpc::ClientReadReactor<grpc::health::v1::HealthCheckResponse> {
 public:
  HealthStream(grpc::health::v1::Health::Stub* stub, std::atomic<int>* first,
               std::atomic<int>* told)
      : first_(first), told_(told) {
    stub->async()->Watch(&ctx_, &req_, this);
    StartRead(&resp_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (resp_.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
      ++*first_;
      StartRead(&resp_);
      return;
    }
    told_at_ = absl::Now();
    ++*told_;
  }
  void OnDone(const grpc::Status&) override {}
  void Cancel() { ctx_.TryCancel(); }
  absl::Time told_at() const { return told_at_; }

 private:
  grpc::ClientContext ctx_;
  grpc::health::v1::HealthCheckRequest req_;
  grpc::health::v1::HealthCheckResponse resp_;
  std::atomic<int>* first_;
  std::atomic<int>* told_;
  absl::Time told_at_ = absl::InfiniteFuture();
};

int S5Baseline(const std::map<std::string, std::string>& a) {
  const int streams = Int(a, "streams", 10000);
  const std::string orchestratord = a.count("orchestratord") ? a.at("orchestratord") : "";
  ResetSchema();
  char dir[] = "/tmp/bench_s5b.XXXXXX";
  if (!mkdtemp(dir)) return 1;
  const std::string token_file = std::string(dir) + "/admin.token";
  const int port = 20000 + (getpid() + 7) % 20000;
  pid_t server = StartServer(orchestratord, port, token_file);
  absl::SleepFor(absl::Seconds(2));
  const long rss_before = RssKiB(server);
  std::vector<std::unique_ptr<grpc::health::v1::Health::Stub>> stubs;
  for (auto& channel : Channels(port)) stubs.push_back(grpc::health::v1::Health::NewStub(channel));
  std::atomic<int> first{0}, told{0};
  std::vector<std::unique_ptr<HealthStream>> all;
  for (int i = 0; i < streams; ++i) {
    all.push_back(std::make_unique<HealthStream>(stubs[i % stubs.size()].get(), &first, &told));
    if ((i + 1) % 500 == 0) {
      for (int w = 0; w < 300 && first.load() < i + 1; ++w) absl::SleepFor(absl::Milliseconds(10));
    }
  }
  absl::SleepFor(absl::Seconds(1));
  const long rss_after = RssKiB(server);
  const absl::Time signalled = absl::Now();
  kill(server, SIGTERM);
  for (int i = 0; i < 1000 && told.load() < first.load(); ++i)
    absl::SleepFor(absl::Milliseconds(10));
  std::vector<double> ms;
  for (auto& s : all) {
    if (s->told_at() != absl::InfiniteFuture()) {
      ms.push_back(absl::ToDoubleMilliseconds(s->told_at() - signalled));
    }
  }
  for (auto& s : all) s->Cancel();
  waitpid(server, nullptr, 0);
  std::printf(
      "{\"scenario\":\"S5\",\"system\":\"grpc-health-watch\",\"streams\":%d,\"opened\":%d,"
      "\"kib_per_idle_stream\":%.2f,\"delivered\":%zu,\"delivery_p50_ms\":%.2f,"
      "\"delivery_p99_ms\":%.2f}\n",
      streams, first.load(),
      static_cast<double>(rss_after - rss_before) / std::max(1, first.load()), ms.size(),
      Percentile(ms, 50), Percentile(ms, 99));
  return 0;
}

int S5(const std::map<std::string, std::string>& a) {
  const int streams = Int(a, "streams", 10000), events = Int(a, "events", 10);
  const std::string orchestratord = a.count("orchestratord") ? a.at("orchestratord") : "";
  ResetSchema();
  char dir[] = "/tmp/bench_s5.XXXXXX";
  if (!mkdtemp(dir)) return 1;
  const std::string token_file = std::string(dir) + "/admin.token";
  const int port = 20000 + getpid() % 20000;
  pid_t server = StartServer(orchestratord, port, token_file);
  std::string token;
  for (int i = 0; i < 100 && token.empty(); ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    std::ifstream in(token_file);
    std::getline(in, token);
  }
  Node node(4);
  EnqueueRequest r;
  r.kind = "bench.burst";  // only this process runs it
  r.owner_id = "bench";
  auto job = node.store->Enqueue(r, absl::Now());
  if (token.empty() || !job.ok()) {
    kill(server, SIGKILL);
    return 1;
  }
  absl::SleepFor(absl::Milliseconds(500));
  const long rss_before = RssKiB(server);

  std::vector<std::unique_ptr<v1::JobService::Stub>> stubs;
  for (auto& channel : Channels(port)) stubs.push_back(v1::JobService::NewStub(channel));
  std::atomic<int> first{0}, ended{0};
  std::vector<std::unique_ptr<Stream>> all;
  for (int i = 0; i < streams; ++i) {
    all.push_back(
        std::make_unique<Stream>(stubs[i % stubs.size()].get(), token, job->id(), &first, &ended));
    if ((i + 1) % 500 == 0) {  // clients arrive in waves, as the baseline's do
      for (int w = 0; w < 300 && first.load() < i + 1; ++w) absl::SleepFor(absl::Milliseconds(10));
    }
  }
  for (int i = 0; i < 600 && first.load() < streams; ++i) absl::SleepFor(absl::Milliseconds(100));
  absl::SleepFor(absl::Seconds(1));
  const long rss_after = RssKiB(server);

  // The bursts: this process holds the job and appends `events` progress
  // events a second apart; each reaches every stream at once.
  auto reserved =
      node.store->Claim("bench-burst", {"bench.burst"}, {}, 1, absl::Minutes(5), absl::Now());
  auto held = node.store->Start("bench-burst", {job->id()}, absl::Minutes(5), absl::Now());
  if (!reserved.ok() || !held.ok() || held->size() != 1) {
    kill(server, SIGKILL);
    return 1;
  }
  for (int i = 1; i <= events; ++i) {
    absl::SleepFor(absl::Seconds(1));
    v1::JobEvent e;
    e.set_type(v1::JOB_EVENT_TYPE_PROGRESS);
    e.mutable_progress()->set_percent(100 * i / events);
    (void)node.store->AppendEvent("bench-burst", job->id(), e, absl::Now());
  }
  (void)node.store->FinishSucceeded("bench-burst", {{job->id(), 1, {}}}, absl::Now());
  for (int i = 0; i < 1200 && ended.load() < streams; ++i) absl::SleepFor(absl::Milliseconds(100));
  std::vector<double> ms;
  size_t delivered = 0;
  for (auto& s : all) {
    delivered += s->latencies().size();
    ms.insert(ms.end(), s->latencies().begin(), s->latencies().end());
  }
  kill(server, SIGTERM);
  waitpid(server, nullptr, 0);
  std::printf(
      "{\"scenario\":\"S5\",\"system\":\"orchestrator\",\"streams\":%d,\"opened\":%d,"
      "\"rss_before_kib\":%ld,\"rss_after_kib\":%ld,\"kib_per_idle_stream\":%.2f,"
      "\"burst_events\":%d,\"delivered\":%zu,\"expected\":%d,\"delivery_p50_ms\":%.2f,"
      "\"delivery_p99_ms\":%.2f}\n",
      streams, first.load(), rss_before, rss_after,
      static_cast<double>(rss_after - rss_before) / std::max(1, first.load()), events, delivered,
      streams * events, Percentile(ms, 50), Percentile(ms, 99));
  return delivered == static_cast<size_t>(streams) * events ? 0 : 1;
}

}  // namespace
}  // namespace orchestrator::jobs

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  // As in orchestratord: Debian's debug-built Abseil would check every lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const std::string mode = argc > 1 ? argv[1] : "";
  auto args = orchestrator::jobs::Args(argc, argv);
  if (mode == "s1") return orchestrator::jobs::S1(args);
  if (mode == "s3") return orchestrator::jobs::S3(args);
  if (mode == "s4") return orchestrator::jobs::S4(args, argv[0]);
  if (mode == "hold") return orchestrator::jobs::Hold(args);
  if (mode == "s5") return orchestrator::jobs::S5(args);
  if (mode == "s5-baseline") return orchestrator::jobs::S5Baseline(args);
  if (mode == "s6") return orchestrator::jobs::S6(args);
  std::fprintf(stderr, "usage: bench_jobs s1|s3|s4|s5|s6 [--flag value ...]\n");
  return 2;
}
