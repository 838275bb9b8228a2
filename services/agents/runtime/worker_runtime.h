#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace orchestrator::agents {

// What a worker's runner is started with, whatever runs it.
struct WorkerLaunch {
  std::string worker_id;
  std::string owner_id;
  // Its files (/workspace) and home (/home/agent): kept across the workers
  // of one session, so a resumed agent finds its work and its state.
  std::string workspace_id;
  // The runner's environment, besides what the runtime adds (PATH, HOME,
  // LANG, ORCHESTRATOR_ADDR): its token and worker id, granted secrets,
  // the operator's keys. Never in a command line or a record anyone can read.
  std::map<std::string, std::string> env;
  // The egress proxy's socket on this host ("" for none).
  std::string egress_socket;
  // 0 = none.
  int64_t memory_bytes = 0;
  int64_t max_pids = 0;
  int64_t cpu_millis = 0;
};

// One started worker: the runner and what runs it.
class RunningWorker {
 public:
  virtual ~RunningWorker() = default;
  // "" while it runs; once it ended, why (said to the worker's owner).
  virtual std::string Ended() = 0;
  // Stops every process of the worker until Thaw (only where CanFreeze).
  virtual absl::Status Freeze() = 0;
  virtual absl::Status Thaw() = 0;
  // Ends it at once, and what the runtime made for it (not its workspace).
  virtual void Kill() = 0;
};

// Where workers run: bubblewrap sandboxes on this host (ProcessRuntime), or
// a Pod each on Kubernetes (KubernetesRuntime).
class WorkerRuntime {
 public:
  virtual ~WorkerRuntime() = default;
  // FAILED_PRECONDITION saying what is missing to start workers here.
  virtual absl::Status Available() = 0;
  // Makes workspace `workspace_id` for `owner_id` if it is new.
  virtual absl::Status PrepareWorkspace(const std::string& workspace_id,
                                        const std::string& owner_id) = 0;
  // The owner of an existing workspace; NOT_FOUND when there is none.
  virtual absl::StatusOr<std::string> WorkspaceOwner(const std::string& workspace_id) = 0;
  virtual absl::StatusOr<std::unique_ptr<RunningWorker>> Start(const WorkerLaunch& launch) = 0;
  // Whether a worker can be frozen in place; where it cannot, pausing it
  // stops it (its workspace stays) and the next task starts a new one.
  virtual bool CanFreeze() const = 0;
  // What a worker left that outlived the process that started it (after a
  // restart): its cgroups, its Pod.
  virtual void Forget(const std::string& worker_id) = 0;
};

}  // namespace orchestrator::agents
