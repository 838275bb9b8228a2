// The agent spawner's benchmark (tools/bench/agents/run drives it; not a
// test). Runs the whole mesh in this process on the PostgreSQL from the
// environment, with real bubblewrap sandboxes and the scripted agent.
//
//   bench_agents cold --runs N    StartWorker → READY, per run (JSON line)
//   bench_agents warm --runs N    SendMessage → reply on a warm session (JSON line)
//   bench_agents bwrap-command    the bwrap command line of a worker's sandbox,
//                                 running /usr/bin/true (for hyperfine)
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "orchestrator/agents/v1/agents.grpc.pb.h"
#include "orchestrator/sessions/v1/sessions.grpc.pb.h"
#include "services/agents/runtime/sandbox.h"
#include "services/common/crypto/secret_box.h"
#include "services/orchestratord/components.h"
#include "services/orchestratord/mesh.h"
#include "spdlog/spdlog.h"

namespace orchestrator {
namespace {

namespace av1 = ::orchestrator::agents::v1;
namespace sv1 = ::orchestrator::sessions::v1;

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * (v.size() - 1) + 0.5));
  return v[i];
}

struct Harness {
  Harness() {
    dir = (std::filesystem::temp_directory_path() / NewId("bench_agents_")).string();
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/key") << GenerateSecretKeyBase64() << "\n";
    MeshConfig c;
    c.listen = "127.0.0.1:0";
    c.services = ComponentNames();
    c.secrets_key_file = dir + "/key";
    c.bootstrap_token_file = dir + "/admin.token";
    c.agents_dir = dir + "/agents";
    c.executor_threads = 4;
    c.db_pool_size = 4;
    auto m = Mesh::Create(c);
    if (!m.ok()) {
      std::fprintf(stderr, "bench_agents: %s\n", m.status().ToString().c_str());
      std::exit(1);
    }
    mesh = std::move(*m);
    if (!mesh->Start().ok()) std::exit(1);
    std::ifstream in(dir + "/admin.token");
    std::getline(in, token);
    channel = grpc::CreateChannel(mesh->address(), grpc::InsecureChannelCredentials());
  }
  ~Harness() {
    mesh->Shutdown();
    mesh.reset();
    std::filesystem::remove_all(dir);
  }
  std::unique_ptr<grpc::ClientContext> Context(bool deadline = true) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", "Bearer " + token);
    if (deadline) ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return ctx;
  }
  std::string dir, token;
  std::unique_ptr<Mesh> mesh;
  std::shared_ptr<grpc::Channel> channel;
};

int Cold(int runs) {
  Harness h;
  auto stub = av1::AgentService::NewStub(h.channel);
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    av1::StartWorkerRequest req;
    req.mutable_config()->set_worker_type(av1::WORKER_TYPE_DEVELOPER);
    req.mutable_config()->set_agent_type(av1::AGENT_TYPE_SCRIPTED);
    // Watch first-hand: the clock starts with StartWorker and stops at READY.
    const absl::Time start = absl::Now();
    av1::StartWorkerResponse started;
    if (!stub->StartWorker(h.Context().get(), req, &started).ok()) return 1;
    auto ctx = h.Context();
    av1::WatchWorkerRequest watch;
    watch.set_worker_id(started.worker().id());
    auto reader = stub->WatchWorker(ctx.get(), watch);
    av1::WatchWorkerResponse w;
    bool ready = false;
    while (reader->Read(&w)) {
      if (w.worker().state() == av1::WORKER_STATE_READY) {
        ready = true;
        break;
      }
      if (w.worker().state() == av1::WORKER_STATE_FAILED) break;
    }
    const double took = absl::ToDoubleMilliseconds(absl::Now() - start);
    ctx->TryCancel();
    reader->Finish();
    if (!ready) {
      std::fprintf(stderr, "bench_agents: worker did not become ready: %s\n",
                   w.worker().state_reason().c_str());
      return 1;
    }
    ms.push_back(took);
    av1::StopWorkerRequest stop;
    stop.set_worker_id(started.worker().id());
    av1::StopWorkerResponse stopped;
    (void)stub->StopWorker(h.Context().get(), stop, &stopped);
  }
  std::printf(
      "{\"scenario\":\"cold-start\",\"system\":\"orchestrator\",\"runs\":%d,\"p50_ms\":%.2f,"
      "\"p90_ms\":%.2f,\"min_ms\":%.2f}\n",
      runs, Percentile(ms, 50), Percentile(ms, 90), Percentile(ms, 0));
  return 0;
}

int Warm(int runs) {
  Harness h;
  auto stub = sv1::SessionService::NewStub(h.channel);
  auto turn = [&](const std::string& text) -> double {
    auto ctx = h.Context();
    sv1::SendMessageRequest req;
    req.set_text(text);
    const absl::Time start = absl::Now();
    auto reader = stub->SendMessage(ctx.get(), req);
    sv1::SendMessageResponse r;
    bool replied = false;
    while (reader->Read(&r)) replied |= r.has_reply();
    const double took = absl::ToDoubleMilliseconds(absl::Now() - start);
    return reader->Finish().ok() && replied ? took : -1;
  };
  if (turn("hello") < 0) return 1;  // the worker starts: not measured
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    const double t = turn("hello");
    if (t < 0) return 1;
    ms.push_back(t);
  }
  std::printf(
      "{\"scenario\":\"warm-turn\",\"system\":\"orchestrator\",\"runs\":%d,\"p50_ms\":%.2f,"
      "\"p90_ms\":%.2f,\"min_ms\":%.2f}\n",
      runs, Percentile(ms, 50), Percentile(ms, 90), Percentile(ms, 0));
  return 0;
}

// The same sandbox a worker gets, running true: what bwrap itself costs.
int BwrapCommand() {
  auto bwrap = agents::FindBwrap();
  if (!bwrap.ok()) return 1;
  const std::string dir = "/tmp/bench_agents_bwrap";
  std::filesystem::create_directories(dir + "/ws");
  std::filesystem::create_directories(dir + "/home");
  agents::SandboxSpec spec;
  spec.argv = {"/usr/bin/true"};
  spec.workspace = dir + "/ws";
  spec.home = dir + "/home";
  spec.env = {{"PATH", "/usr/bin:/bin"}, {"HOME", "/home/agent"}};
  auto cmd = agents::BwrapCommand(*bwrap, spec);
  // --info-fd needs an fd; hyperfine gives none: drop it for the baseline.
  for (size_t i = 0; i + 1 < cmd.size(); ++i) {
    if (cmd[i] == "--info-fd") cmd.erase(cmd.begin() + i, cmd.begin() + i + 2);
  }
  std::vector<std::string> quoted;
  for (const auto& a : cmd) quoted.push_back("'" + a + "'");
  std::printf("%s\n", absl::StrJoin(quoted, " ").c_str());
  return 0;
}

int Runs(int argc, char** argv) {
  for (int i = 2; i + 1 < argc; ++i) {
    int n = 0;
    if (std::string(argv[i]) == "--runs" && absl::SimpleAtoi(argv[i + 1], &n) && n > 0) return n;
  }
  return 20;
}

}  // namespace
}  // namespace orchestrator

int main(int argc, char** argv) {
  spdlog::set_level(std::getenv("BENCH_LOG") ? spdlog::level::info : spdlog::level::warn);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "cold") return orchestrator::Cold(orchestrator::Runs(argc, argv));
  if (mode == "warm") return orchestrator::Warm(orchestrator::Runs(argc, argv));
  if (mode == "bwrap-command") return orchestrator::BwrapCommand();
  std::fprintf(stderr, "usage: bench_agents cold|warm [--runs N] | bwrap-command\n");
  return 2;
}
