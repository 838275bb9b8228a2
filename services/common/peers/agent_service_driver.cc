#include "services/common/peers/agent_service_driver.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "services/common/peers/mesh_call.h"
#include "services/common/status/status.h"

namespace orchestrator {
namespace {

constexpr absl::string_view kAgentService = "AgentService (agents)";

namespace av1 = ::orchestrator::agents::v1;

std::chrono::milliseconds Millis(absl::Duration d) {
  return std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
}

absl::Duration DurationOr(const google::protobuf::Duration& d, bool set, absl::Duration otherwise) {
  return set ? absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos()) : otherwise;
}

absl::Status CutOff() { return absl::CancelledError("the call to AgentService was cut off"); }

// Arms `cancel` to cancel `ctx`'s call for as long as it is in scope.
class ArmedCall final {
 public:
  ArmedCall(Cancellation& cancel, grpc::ClientContext& ctx)
      : cancel_(cancel), armed_(cancel.Arm([&ctx] { ctx.TryCancel(); })) {}
  ~ArmedCall() {
    if (armed_) cancel_.Disarm();
  }
  ArmedCall(const ArmedCall&) = delete;
  ArmedCall& operator=(const ArmedCall&) = delete;

  // False when cancelled before the call started: do not start it.
  bool armed() const { return armed_; }

 private:
  Cancellation& cancel_;
  const bool armed_;
};

}  // namespace

AgentServiceDriver::AgentServiceDriver(std::function<StubPtr()> make_stub, MeshCredentialPtr mesh,
                                       Options options)
    : make_stub_(std::move(make_stub)), mesh_(std::move(mesh)), options_(options) {}

AgentServiceDriver::StubInterface& AgentServiceDriver::Stub() {
  absl::call_once(once_, [this] { stub_ = make_stub_(); });
  return *stub_;
}

template <typename Request, typename Response>
absl::StatusOr<av1::Worker> AgentServiceDriver::Unary(
    const std::string& owner_id,
    grpc::Status (StubInterface::*rpc)(grpc::ClientContext*, const Request&, Response*),
    const Request& req) {
  grpc::ClientContext ctx;
  PrepareMeshCall(ctx, *mesh_, options_.call_deadline, owner_id);
  Response resp;
  if (grpc::Status s = (Stub().*rpc)(&ctx, req, &resp); !s.ok()) {
    return FromPeerStatus(s, kAgentService);
  }
  return std::move(*resp.mutable_worker());
}

absl::StatusOr<av1::Worker> AgentServiceDriver::Start(const std::string& owner_id,
                                                      const av1::StartWorkerRequest& req) {
  return Unary(owner_id, &StubInterface::StartWorker, req);
}

absl::StatusOr<av1::Worker> AgentServiceDriver::Get(const std::string& owner_id,
                                                    const std::string& worker_id) {
  av1::GetWorkerRequest req;
  req.set_worker_id(worker_id);
  return Unary(owner_id, &StubInterface::GetWorker, req);
}

absl::StatusOr<av1::Worker> AgentServiceDriver::Pause(const std::string& owner_id,
                                                      const std::string& worker_id) {
  av1::PauseWorkerRequest req;
  req.set_worker_id(worker_id);
  return Unary(owner_id, &StubInterface::PauseWorker, req);
}

absl::StatusOr<av1::Worker> AgentServiceDriver::Resume(const std::string& owner_id,
                                                       const std::string& worker_id) {
  av1::ResumeWorkerRequest req;
  req.set_worker_id(worker_id);
  return Unary(owner_id, &StubInterface::ResumeWorker, req);
}

absl::StatusOr<av1::Worker> AgentServiceDriver::Stop(const std::string& owner_id,
                                                     const std::string& worker_id,
                                                     const std::string& reason) {
  av1::StopWorkerRequest req;
  req.set_worker_id(worker_id);
  req.set_reason(reason);
  return Unary(owner_id, &StubInterface::StopWorker, req);
}

absl::StatusOr<av1::Worker> AgentServiceDriver::WaitUntilStarted(const std::string& owner_id,
                                                                 const std::string& worker_id,
                                                                 absl::Duration timeout,
                                                                 Cancellation& cancel) {
  grpc::ClientContext ctx;
  PrepareMeshCall(ctx, *mesh_, Millis(timeout), owner_id);
  ArmedCall call(cancel, ctx);
  if (!call.armed()) return CutOff();
  av1::WatchWorkerRequest req;
  req.set_worker_id(worker_id);
  auto reader = Stub().WatchWorker(&ctx, req);
  av1::WatchWorkerResponse change;
  std::optional<av1::Worker> started;
  while (reader->Read(&change)) {
    if (change.worker().state() != av1::WORKER_STATE_STARTING) {
      started = std::move(*change.mutable_worker());
      // The watch would go on until the worker ends.
      ctx.TryCancel();
      break;
    }
  }
  grpc::Status status = reader->Finish();
  if (started.has_value()) return *std::move(started);
  if (cancel.cancelled()) return CutOff();
  if (status.ok()) {
    return absl::UnavailableError(
        absl::StrCat("AgentService ended the watch of worker ", worker_id, " before it started"));
  }
  return FromPeerStatus(status, kAgentService);
}

absl::StatusOr<av1::TaskResult> AgentServiceDriver::RunTask(
    const std::string& owner_id, const av1::RunTaskRequest& req,
    const std::function<void(const av1::AgentEvent&)>& on_event, Cancellation& cancel) {
  const absl::Duration task_timeout =
      DurationOr(req.timeout(), req.has_timeout(), options_.default_task_timeout);
  grpc::ClientContext ctx;
  PrepareMeshCall(ctx, *mesh_, Millis(task_timeout + options_.task_deadline_margin), owner_id);
  ArmedCall call(cancel, ctx);
  if (!call.armed()) return CutOff();
  auto reader = Stub().RunTask(&ctx, req);
  av1::RunTaskResponse message;
  std::optional<av1::TaskResult> result;
  while (reader->Read(&message)) {
    if (message.has_event()) on_event(message.event());
    if (message.has_result()) result = std::move(*message.mutable_result());
  }
  grpc::Status status = reader->Finish();
  if (result.has_value()) return *std::move(result);
  if (cancel.cancelled()) return CutOff();
  if (status.ok()) {
    return absl::UnavailableError(absl::StrCat("AgentService ended the task on worker ",
                                               req.worker_id(), " without its result"));
  }
  return FromPeerStatus(status, kAgentService);
}

absl::StatusOr<av1::CommandResult> AgentServiceDriver::RunCommand(
    const std::string& owner_id, const av1::RunCommandRequest& req,
    const std::function<void(const av1::CommandOutput&)>& on_output, Cancellation& cancel) {
  const absl::Duration timeout =
      DurationOr(req.timeout(), req.has_timeout(), options_.default_command_timeout);
  grpc::ClientContext ctx;
  PrepareMeshCall(ctx, *mesh_, Millis(timeout + options_.task_deadline_margin), owner_id);
  ArmedCall call(cancel, ctx);
  if (!call.armed()) return CutOff();
  auto reader = Stub().RunCommand(&ctx, req);
  av1::RunCommandResponse message;
  std::optional<av1::CommandResult> result;
  while (reader->Read(&message)) {
    if (message.has_output()) on_output(message.output());
    if (message.has_result()) result = std::move(*message.mutable_result());
  }
  grpc::Status status = reader->Finish();
  if (result.has_value()) return *std::move(result);
  if (cancel.cancelled()) return CutOff();
  if (status.ok()) {
    return absl::UnavailableError(absl::StrCat("AgentService ended the command on worker ",
                                               req.worker_id(), " without its result"));
  }
  return FromPeerStatus(status, kAgentService);
}

}  // namespace orchestrator
