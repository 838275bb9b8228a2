#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "orchestrator/agents/v1/agents.pb.h"

namespace orchestrator {

// Cuts a driver's blocking call off from another thread (a shutdown, the
// session ending): the call returns CANCELLED promptly, and what it was
// doing on the agents' side is cancelled with it. It stays cancelled: a call
// started afterwards returns at once.
class Cancellation final {
 public:
  void Cancel();
  bool cancelled() const;

  // For drivers, around one blocking call: `cut` runs (once, on the thread
  // that calls Cancel) if Cancel comes while the call is armed. False, and
  // `cut` is dropped, when cancelled already.
  bool Arm(std::function<void()> cut);
  // The call is over; returns once a `cut` running now has returned.
  void Disarm();

 private:
  mutable absl::Mutex mu_;
  // Whether Cancel was called, and what it cuts while a call is armed.
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> cut_ ABSL_GUARDED_BY(mu_);
};

// What the components that drive workers (sessions, engineering) need of the
// agents component's AgentService: every call acts for `owner_id`, the user
// the work is for, and is scoped to that user's workers.
class AgentDriver {
 public:
  virtual ~AgentDriver() = default;

  // The worker, STARTING. req.operator_environment is the manager's to set.
  virtual absl::StatusOr<agents::v1::Worker> Start(const std::string& owner_id,
                                                   const agents::v1::StartWorkerRequest& req) = 0;
  virtual absl::StatusOr<agents::v1::Worker> Get(const std::string& owner_id,
                                                 const std::string& worker_id) = 0;
  virtual absl::StatusOr<agents::v1::Worker> Pause(const std::string& owner_id,
                                                   const std::string& worker_id) = 0;
  virtual absl::StatusOr<agents::v1::Worker> Resume(const std::string& owner_id,
                                                    const std::string& worker_id) = 0;
  virtual absl::StatusOr<agents::v1::Worker> Stop(const std::string& owner_id,
                                                  const std::string& worker_id,
                                                  const std::string& reason) = 0;
  // Blocks until the worker has left STARTING and returns it (READY, or
  // ended with its state_reason); DEADLINE_EXCEEDED after `timeout`,
  // CANCELLED once `cancel` is.
  virtual absl::StatusOr<agents::v1::Worker> WaitUntilStarted(const std::string& owner_id,
                                                              const std::string& worker_id,
                                                              absl::Duration timeout,
                                                              Cancellation& cancel) = 0;
  // Runs a task and blocks until its result; `on_event` hears the agent's
  // events in order, on the calling thread. CANCELLED once `cancel` is (the
  // task is cancelled too).
  virtual absl::StatusOr<agents::v1::TaskResult> RunTask(
      const std::string& owner_id, const agents::v1::RunTaskRequest& req,
      const std::function<void(const agents::v1::AgentEvent&)>& on_event, Cancellation& cancel) = 0;
  // Runs a command in the worker's sandbox and blocks until its result;
  // `on_output` hears its output in order, on the calling thread. CANCELLED
  // once `cancel` is (the command is cancelled too).
  virtual absl::StatusOr<agents::v1::CommandResult> RunCommand(
      const std::string& owner_id, const agents::v1::RunCommandRequest& req,
      const std::function<void(const agents::v1::CommandOutput&)>& on_output,
      Cancellation& cancel) = 0;
};

using AgentDriverPtr = std::shared_ptr<AgentDriver>;

}  // namespace orchestrator
