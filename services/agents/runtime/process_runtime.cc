#include "services/agents/runtime/process_runtime.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace orchestrator::agents {
namespace {

namespace fs = std::filesystem;

constexpr char kMeshSocketInside[] = "/run/orchestrator/mesh.sock";
constexpr char kEgressSocketInside[] = "/run/orchestrator/egress.sock";
constexpr char kBinInside[] = "/opt/orchestrator/bin";

class SandboxWorker final : public RunningWorker {
 public:
  SandboxWorker(std::unique_ptr<Sandbox> sandbox, std::string worker_id)
      : sandbox_(std::move(sandbox)), worker_id_(std::move(worker_id)) {}

  std::string Ended() override {
    if (sandbox_->Running()) return "";
    auto status = sandbox_->Wait(absl::ZeroDuration());
    return absl::StrCat("the sandbox exited (wait status ", status.ok() ? *status : -1,
                        "); see workers/", worker_id_, ".log");
  }
  absl::Status Freeze() override { return sandbox_->Freeze(); }
  absl::Status Thaw() override { return sandbox_->Thaw(); }
  void Kill() override { sandbox_->Kill(); }

 private:
  std::unique_ptr<Sandbox> sandbox_;
  const std::string worker_id_;
};

}  // namespace

absl::Status ProcessRuntime::Available() {
  if (options_.unsandboxed) return absl::OkStatus();
  return FindBwrap().status();
}

absl::Status ProcessRuntime::PrepareWorkspace(const std::string& workspace_id,
                                              const std::string& owner_id) {
  const fs::path workspace = fs::path(options_.root_dir) / "workspaces" / workspace_id;
  std::error_code ec;
  fs::create_directories(workspace / "work", ec);
  fs::create_directories(workspace / "home", ec);
  // What is bound into the sandbox must be the directories themselves: bind
  // follows symlinks.
  for (const fs::path& dir : {workspace, workspace / "work", workspace / "home"}) {
    std::error_code stat_ec;
    if (!ec &&
        (fs::is_symlink(fs::symlink_status(dir, stat_ec)) || !fs::is_directory(dir, stat_ec))) {
      ec = std::make_error_code(std::errc::not_a_directory);
    }
  }
  fs::create_directories(fs::path(options_.root_dir) / "workers", ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("agents: cannot create ", workspace.string(), ": ", ec.message()));
  }
  std::ofstream owner(workspace / "owner");
  owner << owner_id << "\n";
  return absl::OkStatus();
}

absl::StatusOr<std::string> ProcessRuntime::WorkspaceOwner(const std::string& workspace_id) {
  std::ifstream owner(fs::path(options_.root_dir) / "workspaces" / workspace_id / "owner");
  std::string owner_id;
  std::getline(owner, owner_id);
  if (!owner || owner_id.empty()) {
    return absl::NotFoundError(absl::StrCat("workspace '", workspace_id, "' not found"));
  }
  return owner_id;
}

absl::StatusOr<std::unique_ptr<RunningWorker>> ProcessRuntime::Start(const WorkerLaunch& launch) {
  const fs::path workspace = fs::path(options_.root_dir) / "workspaces" / launch.workspace_id;
  SandboxSpec spec;
  spec.workspace = (workspace / "work").string();
  spec.home = (workspace / "home").string();
  spec.log_path = (fs::path(options_.root_dir) / "workers" / (launch.worker_id + ".log")).string();
  spec.isolate_network = true;  // never the host's network: out only through the egress proxy
  spec.cgroup = launch.worker_id;
  spec.memory_bytes = launch.memory_bytes;
  spec.max_pids = launch.max_pids > 0 ? launch.max_pids : options_.default_max_pids;
  spec.cpu_millis = launch.cpu_millis;
  spec.unsandboxed = options_.unsandboxed;
  std::string path = options_.unsandboxed ? options_.bin_dir : kBinInside;
  for (const auto& dir : options_.tool_dirs) {
    absl::StrAppend(&path, ":", dir, "/.bin");
    spec.mounts.push_back({dir, "", false});
  }
  absl::StrAppend(&path, ":/usr/local/bin:/usr/bin:/bin");
  // The runner and the CLI only, each a read-only file: nothing else of
  // the build (test binaries) or the install is visible inside.
  for (const char* binary : {"orchestrator-runner", "orchestrator"}) {
    spec.mounts.push_back({absl::StrCat(options_.bin_dir, "/", binary),
                           absl::StrCat(kBinInside, "/", binary), false});
  }
  for (const auto& dir : options_.library_dirs) spec.mounts.push_back({dir, "", false});
  spec.mounts.push_back({options_.mesh_socket, kMeshSocketInside, true});
  spec.env = launch.env;
  if (!launch.egress_socket.empty()) {  // the runner serves it to agents as HTTP(S)_PROXY
    spec.mounts.push_back({launch.egress_socket, kEgressSocketInside, true});
    spec.env["ORCHESTRATOR_EGRESS_SOCKET"] =
        options_.unsandboxed ? launch.egress_socket : kEgressSocketInside;
  }
  spec.env["PATH"] = path;
  spec.env["HOME"] = options_.unsandboxed ? spec.home : "/home/agent";
  spec.env["LANG"] = "C.UTF-8";
  spec.env["ORCHESTRATOR_ADDR"] =
      absl::StrCat("unix:", options_.unsandboxed ? options_.mesh_socket : kMeshSocketInside);
  spec.argv = {options_.unsandboxed ? options_.bin_dir + "/orchestrator-runner"
                                    : std::string(kBinInside) + "/orchestrator-runner"};
  auto sandbox = Sandbox::Start(spec);
  if (!sandbox.ok()) return sandbox.status();
  return std::make_unique<SandboxWorker>(*std::move(sandbox), launch.worker_id);
}

}  // namespace orchestrator::agents
