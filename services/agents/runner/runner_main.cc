// orchestrator-runner: runs inside a worker's sandbox. It connects back to
// the spawner (RunnerService.Connect) with the worker's token, writes the
// worker's instructions and skills into the workspace, then runs the tasks
// it is sent with the worker's agent CLI, streaming normalized events and
// each task's result. When the connection ends, it ends.
//
//   orchestrator-runner                      (ORCHESTRATOR_ADDR, ORCHESTRATOR_TOKEN,
//                                             ORCHESTRATOR_WORKER_ID from the environment)
//   orchestrator-runner scripted-agent --prompt TEXT [--session ID]
//                                            (the built-in agent; see scripted_agent.h)
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "orchestrator/agents/v1/runner.grpc.pb.h"
#include "services/agents/runner/agent_adapter.h"
#include "services/agents/runner/egress_forwarder.h"
#include "services/agents/runner/scripted_agent.h"
#include "services/agents/runner/task_runner.h"
#include "services/common/commands/skills.h"
#include "services/common/process/child_process.h"
#include "services/common/validation/request_bounds.h"

namespace orchestrator::agents {

constexpr char kVersion[] = "orchestrator-runner 0.1";

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

std::string SelfPath() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "orchestrator-runner" : p.string();
}

// The worker's instructions file (CLAUDE.md or AGENTS.md) with the commands
// its token allows, and the skills where its agent CLI loads them (Claude
// Code: .claude/skills/, Codex: .agents/skills/; others get the usage inline).
void WriteInstructions(const v1::WorkerConfig& config, const std::string& workspace) {
  const bool claude = config.agent_type() == v1::AGENT_TYPE_CLAUDE_CODE;
  const std::string file = workspace + (claude ? "/CLAUDE.md" : "/AGENTS.md");
  {
    std::ofstream out(file, std::ios::trunc);
    out << config.instructions() << (config.instructions().empty() ? "" : "\n\n");
  }
  std::vector<std::string> grants(config.allowed_commands().begin(),
                                  config.allowed_commands().end());
  const commands::SkillsFormat format = claude ? commands::SkillsFormat::kClaude
                                        : config.agent_type() == v1::AGENT_TYPE_CODEX
                                            ? commands::SkillsFormat::kCodex
                                            : commands::SkillsFormat::kAgents;
  auto written = commands::WriteSkills(workspace, grants, format);
  if (!written.ok()) std::cerr << "runner: skills not written: " << written.status() << "\n";
}

int RunRunner() {
  const std::string addr = Env("ORCHESTRATOR_ADDR"), token = Env("ORCHESTRATOR_TOKEN"),
                    worker_id = Env("ORCHESTRATOR_WORKER_ID");
  if (addr.empty() || token.empty() || worker_id.empty()) {
    std::cerr << "runner: ORCHESTRATOR_ADDR, ORCHESTRATOR_TOKEN and ORCHESTRATOR_WORKER_ID must "
                 "be set\n";
    return 2;
  }
  // The sandbox has only loopback: what its agents reach outside, they
  // reach through the mesh's egress proxy, announced as HTTP(S)_PROXY.
  std::unique_ptr<EgressForwarder> egress;
  if (const std::string socket = Env("ORCHESTRATOR_EGRESS_SOCKET"); !socket.empty()) {
    auto started = EgressForwarder::Start(socket);
    if (!started.ok()) {
      std::cerr << "runner: " << started.status() << "\n";
      return 1;
    }
    egress = std::move(*started);
    const std::string proxy = "http://127.0.0.1:" + std::to_string(egress->port());
    for (const char* name : {"HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"})
      setenv(name, proxy.c_str(), 1);
    // Nothing bypasses it: 127.0.0.1 here is the sandbox's own loopback, so
    // even a model API on the host's loopback is reached through the proxy.
    for (const char* name : {"NO_PROXY", "no_proxy"}) setenv(name, "", 1);
  }
  const std::string workspace = std::filesystem::current_path().string();
  // What an agent starts in the background (nohup, setsid, a double fork)
  // stays ours, and ends with its turn (KillDescendants below).
  if (auto s = BecomeSubreaper(); !s.ok()) {
    std::cerr << "runner: background processes may outlive their turn: " << s << "\n";
  }
  // A command's task carries its standard input (up to 3 MiB) and more.
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 * 1024 * 1024);
  auto channel = grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args);
  auto stub = v1::RunnerService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + token);
  auto stream = stub->Connect(&ctx);
  absl::Mutex write_mu;
  // What an agent produced, clipped to the contract's bounds: the mesh
  // would end the connection over a message out of bounds.
  auto write = [&](v1::ConnectRequest r) {
    FitToBounds(&r);
    absl::MutexLock lock(&write_mu);
    return stream->Write(r);
  };
  v1::ConnectRequest hello;
  hello.mutable_hello()->set_worker_id(worker_id);
  hello.mutable_hello()->set_runner_version(kVersion);
  if (!write(hello)) {
    std::cerr << "runner: cannot reach the spawner at " << addr << ": "
              << stream->Finish().error_message() << "\n";
    return 1;
  }
  v1::ConnectResponse msg;
  if (!stream->Read(&msg) || !msg.has_welcome()) {
    std::cerr << "runner: the spawner did not welcome us: " << stream->Finish().error_message()
              << "\n";
    return 1;
  }
  const v1::WorkerConfig config = msg.welcome().config();
  WriteInstructions(config, workspace);
  const absl::Duration default_timeout =
      config.limits().has_task_timeout() ? absl::Seconds(config.limits().task_timeout().seconds())
                                         : absl::Minutes(30);
  const std::vector<std::string> scripted = {SelfPath(), "scripted-agent"};

  std::thread running;
  std::atomic<bool> cancel{false};
  std::string running_task;
  while (stream->Read(&msg)) {
    if (msg.has_cancel()) {
      if (msg.cancel().task_id() == running_task) cancel = true;
      continue;
    }
    if (!msg.has_task()) continue;
    if (running.joinable()) running.join();  // the spawner sends one task at a time
    cancel = false;
    running_task = msg.task().id();
    running = std::thread([&, task = msg.task()] {
      auto emit = [&](const v1::AgentEvent& e) {
        v1::ConnectRequest r;
        *r.mutable_event() = e;
        write(r);
      };
      // The turn is over: nothing the agent or the command started outlives it.
      auto end_turn = [] { KillDescendants(); };
      v1::TaskResult result;
      if (task.has_command()) {
        result = RunWorkspaceCommand(task, workspace, &cancel, emit, end_turn);
      } else {
        auto adapter = MakeAdapter(config.agent_type(), scripted);
        result = RunAgentTask(task, *adapter, workspace, default_timeout, &cancel, emit, end_turn);
      }
      v1::ConnectRequest r;
      *r.mutable_result() = result;
      write(r);
    });
  }
  // The spawner went away: whatever runs now has no one to report to.
  cancel = true;
  if (running.joinable()) running.join();
  grpc::Status status = stream->Finish();
  std::cerr << "runner: connection ended: " << status.error_code() << " " << status.error_message()
            << "\n";
  return status.ok() ? 0 : 1;
}

}  // namespace
}  // namespace orchestrator::agents

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "scripted-agent") {
    std::string prompt, session;
    for (int i = 2; i + 1 < argc; i += 2) {
      const std::string flag = argv[i];
      if (flag == "--prompt") prompt = argv[i + 1];
      if (flag == "--session") session = argv[i + 1];
    }
    return orchestrator::agents::RunScriptedAgent(prompt, session, std::cout);
  }
  if (argc > 1 && std::string(argv[1]) == "--version") {
    std::cout << orchestrator::agents::kVersion << "\n";
    return 0;
  }
  if (argc > 1) {
    std::cerr
        << "usage: orchestrator-runner [--version | scripted-agent --prompt TEXT [--session ID]]\n";
    return 2;
  }
  return orchestrator::agents::RunRunner();
}
