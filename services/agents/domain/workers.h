#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "orchestrator/agents/v1/agents.pb.h"
#include "orchestrator/agents/v1/runner.pb.h"
#include "services/common/auth/principal.h"

namespace orchestrator::agents {

// What a connected runner is sent, and how its connection ends.
class RunnerLink {
 public:
  virtual ~RunnerLink() = default;
  virtual void Send(const v1::ConnectResponse& message) = 0;
  // Ends the connection (the worker is over).
  virtual void Close(const absl::Status& status) = 0;
};

// A RunTask caller's view of its task.
struct TaskListener {
  std::function<void(const v1::AgentEvent&)> on_event;
  std::function<void(const v1::TaskResult&)> on_result;  // last call
};

// The agents component's domain as its gRPC adapters (AgentService,
// RunnerService) see it: workers owner-scoped by the caller, tasks with
// their listeners, and the runner's side of a worker. WorkerSpawner is the
// implementation; tests of the adapters use a mock.
class Workers {
 public:
  virtual ~Workers() = default;

  // PERMISSION_DENIED for req.operator_environment unless `caller` is the mesh.
  virtual absl::StatusOr<v1::Worker> Start(const Principal& caller,
                                           const v1::StartWorkerRequest& req) = 0;
  virtual absl::StatusOr<v1::Worker> Get(const Principal& caller, const std::string& worker_id) = 0;
  virtual absl::StatusOr<v1::ListWorkersResponse> List(const Principal& caller,
                                                       const v1::ListWorkersRequest& req) = 0;
  virtual absl::StatusOr<v1::Worker> Pause(const Principal& caller,
                                           const std::string& worker_id) = 0;
  virtual absl::StatusOr<v1::Worker> Resume(const Principal& caller,
                                            const std::string& worker_id) = 0;
  virtual absl::StatusOr<v1::Worker> Stop(const Principal& caller, const std::string& worker_id,
                                          const std::string& reason) = 0;
  virtual absl::StatusOr<std::string> Finish(const Principal& caller,
                                             const v1::FinishTaskRequest& req) = 0;

  // Watching a worker: `on_change` gets its current state at once, then
  // every change; returns a handle for Unwatch.
  virtual absl::StatusOr<uint64_t> Watch(const Principal& caller, const std::string& worker_id,
                                         std::function<void(const v1::Worker&)> on_change) = 0;
  // No change made after this returns reaches the watcher (one being told
  // already may).
  virtual void Unwatch(const std::string& worker_id, uint64_t handle) = 0;

  // Runs (or, for a request_id seen before, attaches to) a task; the
  // listener gets its events and then its result. Returns the task id.
  virtual absl::StatusOr<std::string> RunTask(const Principal& caller,
                                              const v1::RunTaskRequest& req, TaskListener listener,
                                              uint64_t* handle) = 0;
  // Runs (or attaches to) a command in the worker's sandbox, as a task the
  // runner runs instead of its agent (Task.command): admitted like RunTask,
  // its output arrives as AgentEvent.command_output, its end as
  // TaskResult.command. Returns the task id.
  virtual absl::StatusOr<std::string> RunCommand(const Principal& caller,
                                                 const v1::RunCommandRequest& req,
                                                 TaskListener listener, uint64_t* handle) = 0;
  // The caller went away: stop listening; `cancel` also cancels the task.
  virtual void Detach(const std::string& worker_id, uint64_t handle, bool cancel) = 0;

  // The runner side (RunnerService.Connect). `link` is used until
  // RunnerGone returns for it.
  virtual absl::StatusOr<v1::WorkerConfig> RunnerConnected(const Principal& runner,
                                                           const v1::RunnerHello& hello,
                                                           RunnerLink* link) = 0;
  virtual void RunnerEvent(const std::string& worker_id, const v1::AgentEvent& event) = 0;
  virtual void RunnerResult(const std::string& worker_id, const v1::TaskResult& result) = 0;
  virtual void RunnerGone(const std::string& worker_id, RunnerLink* link,
                          const std::string& reason) = 0;
};

using WorkersPtr = std::shared_ptr<Workers>;

}  // namespace orchestrator::agents
