#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "absl/base/call_once.h"
#include "absl/time/time.h"
#include "orchestrator/agents/v1/agents.grpc.pb.h"
#include "services/common/auth/mesh_identity.h"
#include "services/common/peers/agent_driver.h"

namespace orchestrator {

// Workers through AgentService's stub: every call as the mesh acting for
// the user the work is for (so the agents component scopes it
// to that user's workers, and grants the mesh-only operator_environment),
// each with a deadline. The streaming calls block the calling thread (a
// turn's own); a Cancellation cancels them from another.
class AgentServiceDriver final : public AgentDriver {
 public:
  using StubPtr = std::unique_ptr<agents::v1::AgentService::StubInterface>;

  struct Options {
    // Start, Get, Pause, Resume, Stop.
    std::chrono::milliseconds call_deadline{10000};
    // RunTask's deadline: the request's timeout, or this when it sets none
    // (the agents component's default task timeout), plus the margin for
    // the result to arrive after the agents side times the task out.
    absl::Duration default_task_timeout = absl::Minutes(30);
    absl::Duration task_deadline_margin = absl::Minutes(1);
    // RunCommand's deadline likewise: the request's timeout or this (the
    // agents component's default), plus task_deadline_margin.
    absl::Duration default_command_timeout = absl::Minutes(10);
  };

  // `make_stub` runs once, at the first call (an in-process channel exists
  // only once the server serves).
  AgentServiceDriver(std::function<StubPtr()> make_stub, MeshCredentialPtr mesh, Options options);

  absl::StatusOr<agents::v1::Worker> Start(const std::string& owner_id,
                                           const agents::v1::StartWorkerRequest& req) override;
  absl::StatusOr<agents::v1::Worker> Get(const std::string& owner_id,
                                         const std::string& worker_id) override;
  absl::StatusOr<agents::v1::Worker> Pause(const std::string& owner_id,
                                           const std::string& worker_id) override;
  absl::StatusOr<agents::v1::Worker> Resume(const std::string& owner_id,
                                            const std::string& worker_id) override;
  absl::StatusOr<agents::v1::Worker> Stop(const std::string& owner_id, const std::string& worker_id,
                                          const std::string& reason) override;
  absl::StatusOr<agents::v1::Worker> WaitUntilStarted(const std::string& owner_id,
                                                      const std::string& worker_id,
                                                      absl::Duration timeout,
                                                      Cancellation& cancel) override;
  absl::StatusOr<agents::v1::TaskResult> RunTask(
      const std::string& owner_id, const agents::v1::RunTaskRequest& req,
      const std::function<void(const agents::v1::AgentEvent&)>& on_event,
      Cancellation& cancel) override;
  absl::StatusOr<agents::v1::CommandResult> RunCommand(
      const std::string& owner_id, const agents::v1::RunCommandRequest& req,
      const std::function<void(const agents::v1::CommandOutput&)>& on_output,
      Cancellation& cancel) override;

 private:
  using StubInterface = agents::v1::AgentService::StubInterface;
  StubInterface& Stub();
  // One of the unary calls, acting for `owner_id`: the worker it returns.
  template <typename Request, typename Response>
  absl::StatusOr<agents::v1::Worker> Unary(const std::string& owner_id,
                                           grpc::Status (StubInterface::*rpc)(grpc::ClientContext*,
                                                                              const Request&,
                                                                              Response*),
                                           const Request& req);

  std::function<StubPtr()> make_stub_;
  const MeshCredentialPtr mesh_;
  const Options options_;
  absl::once_flag once_;
  StubPtr stub_;
};

}  // namespace orchestrator
