#pragma once

#include <string>
#include <vector>

#include "services/agents/runtime/sandbox.h"
#include "services/agents/runtime/worker_runtime.h"

namespace orchestrator::agents {

// Workers as bubblewrap sandboxes on this host (see SandboxSpec): the
// runner and the CLI bound in read-only, the mesh on a unix socket bound
// into the sandbox, the workspace under root_dir/workspaces/<id>/ (work →
// /workspace, home → /home/agent), the runner's output in
// root_dir/workers/<id>.log. Freezing stops every process of the tree.
struct ProcessRuntimeOptions {
  std::string root_dir;
  std::string bin_dir;                    // orchestrator-runner and orchestrator
  std::vector<std::string> tool_dirs;     // agent CLIs' installs (read-only, same path inside)
  std::vector<std::string> library_dirs;  // shared libraries of the binaries outside /usr
  std::string mesh_socket;                // host path of the socket sandboxes reach the mesh on
  bool unsandboxed = false;               // plain processes (an explicit choice)
  int64_t default_max_pids = 1024;
};

class ProcessRuntime final : public WorkerRuntime {
 public:
  explicit ProcessRuntime(ProcessRuntimeOptions options) : options_(std::move(options)) {}

  absl::Status Available() override;
  absl::Status PrepareWorkspace(const std::string& workspace_id,
                                const std::string& owner_id) override;
  absl::StatusOr<std::string> WorkspaceOwner(const std::string& workspace_id) override;
  absl::StatusOr<std::unique_ptr<RunningWorker>> Start(const WorkerLaunch& launch) override;
  bool CanFreeze() const override { return true; }
  void Forget(const std::string& worker_id) override { RemoveCgroups(worker_id); }

 private:
  const ProcessRuntimeOptions options_;
};

}  // namespace orchestrator::agents
