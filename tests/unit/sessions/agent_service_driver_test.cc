// AgentServiceDriver against a fake AgentService on an in-process channel:
// every call is the mesh acting for the session's user, with a deadline;
// the streams end when the worker is ready or the task has its result, or
// promptly when the turn is cut off.
#include "services/common/peers/agent_service_driver.h"

#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <map>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/rpc/queued_writer.h"

namespace orchestrator::sessions {
namespace {

namespace av1 = ::orchestrator::agents::v1;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(30);

av1::Worker WorkerIn(const std::string& id, av1::WorkerState state) {
  av1::Worker w;
  w.set_id(id);
  w.set_state(state);
  return w;
}

// How one call reached the service.
struct Seen {
  std::string authorization, act_for;
  std::chrono::system_clock::time_point deadline;
};

// AgentService as far as the driver uses it; it remembers who called.
class FakeAgentService final : public av1::AgentService::CallbackService {
 public:
  // RunTask streams two events, then ends with the result; with
  // `hold_task` it waits for the caller to leave instead.
  bool hold_task = false;
  // WatchWorker never sees the worker leave STARTING.
  bool never_ready = false;

  grpc::ServerUnaryReactor* StartWorker(grpc::CallbackServerContext* ctx,
                                        const av1::StartWorkerRequest* req,
                                        av1::StartWorkerResponse* resp) override {
    Record("StartWorker", ctx);
    {
      absl::MutexLock lock(&mu_);
      start_ = *req;
    }
    *resp->mutable_worker() = WorkerIn("w1", av1::WORKER_STATE_STARTING);
    return Done(ctx, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* GetWorker(grpc::CallbackServerContext* ctx,
                                      const av1::GetWorkerRequest* req,
                                      av1::GetWorkerResponse* resp) override {
    Record("GetWorker", ctx);
    if (req->worker_id() != "w1") {
      return Done(ctx, grpc::Status(grpc::StatusCode::NOT_FOUND,
                                    "worker '" + req->worker_id() + "' not found"));
    }
    *resp->mutable_worker() = WorkerIn("w1", av1::WORKER_STATE_READY);
    return Done(ctx, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* StopWorker(grpc::CallbackServerContext* ctx,
                                       const av1::StopWorkerRequest* req,
                                       av1::StopWorkerResponse* resp) override {
    Record("StopWorker", ctx);
    av1::Worker w = WorkerIn(req->worker_id(), av1::WORKER_STATE_STOPPED);
    w.set_state_reason(req->reason());
    *resp->mutable_worker() = w;
    return Done(ctx, grpc::Status::OK);
  }

  grpc::ServerWriteReactor<av1::WatchWorkerResponse>* WatchWorker(
      grpc::CallbackServerContext* ctx, const av1::WatchWorkerRequest* req) override {
    Record("WatchWorker", ctx);
    auto writer = QueuedWriter<av1::WatchWorkerResponse>::Create();
    av1::WatchWorkerResponse r;
    *r.mutable_worker() = WorkerIn(req->worker_id(), av1::WORKER_STATE_STARTING);
    writer->Push(r);
    if (!never_ready) {
      r.set_previous_state(av1::WORKER_STATE_STARTING);
      *r.mutable_worker() = WorkerIn(req->worker_id(), av1::WORKER_STATE_READY);
      writer->Push(r);
    }
    // Like the real watch, it goes on until the worker ends or the caller leaves.
    writer->OnFinished([this] { watch_left_.Notify(); });
    return writer.get();
  }

  grpc::ServerWriteReactor<av1::RunTaskResponse>* RunTask(grpc::CallbackServerContext* ctx,
                                                          const av1::RunTaskRequest* req) override {
    Record("RunTask", ctx);
    auto writer = QueuedWriter<av1::RunTaskResponse>::Create();
    for (int i = 1; i <= 2; ++i) {
      av1::RunTaskResponse r;
      r.mutable_event()->set_sequence(i);
      r.mutable_event()->mutable_text()->set_text("step " + std::to_string(i));
      writer->Push(r);
    }
    if (hold_task) {
      // Cancelling the call cancels the task (RunTask's contract).
      writer->OnFinished([this] { task_left_.Notify(); });
      return writer.get();
    }
    av1::RunTaskResponse r;
    r.mutable_result()->set_status(av1::TASK_STATUS_SUCCEEDED);
    r.mutable_result()->set_summary("done: " + req->prompt());
    writer->Push(r);
    writer->End(absl::OkStatus());
    return writer.get();
  }

  // RunCommand streams its stdin back as stdout and "warn" as stderr, then
  // ends with exit 3; with `hold_command` it waits for the caller to leave
  // instead; a worker other than w1 is busy.
  grpc::ServerWriteReactor<av1::RunCommandResponse>* RunCommand(
      grpc::CallbackServerContext* ctx, const av1::RunCommandRequest* req) override {
    Record("RunCommand", ctx);
    auto writer = QueuedWriter<av1::RunCommandResponse>::Create();
    if (req->worker_id() != "w1") {
      writer->End(absl::FailedPreconditionError("worker '" + req->worker_id() + "' is busy"));
      return writer.get();
    }
    av1::RunCommandResponse r;
    r.mutable_output()->set_data(req->command().stdin());
    writer->Push(r);
    r.mutable_output()->set_data("warn");
    r.mutable_output()->set_stderr(true);
    writer->Push(r);
    if (hold_command) {
      writer->OnFinished([this] { command_left_.Notify(); });
      return writer.get();
    }
    av1::RunCommandResponse end;
    end.mutable_result()->set_exit_code(3);
    writer->Push(end);
    writer->End(absl::OkStatus());
    return writer.get();
  }
  bool hold_command = false;

  Seen SeenOf(const std::string& rpc) {
    absl::MutexLock lock(&mu_);
    return seen_[rpc];
  }
  av1::StartWorkerRequest start() {
    absl::MutexLock lock(&mu_);
    return start_;
  }
  absl::Notification watch_left_, task_left_, command_left_;

 private:
  void Record(const std::string& rpc, grpc::CallbackServerContext* ctx) {
    Seen s;
    s.deadline = ctx->deadline();
    for (const auto& [k, v] : ctx->client_metadata()) {
      if (k == "authorization") s.authorization = std::string(v.data(), v.size());
      if (k == "x-orchestrator-act-for") s.act_for = std::string(v.data(), v.size());
    }
    absl::MutexLock lock(&mu_);
    seen_[rpc] = s;
  }
  static grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx, grpc::Status status) {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(status);
    return reactor;
  }

  absl::Mutex mu_;
  std::map<std::string, Seen> seen_ ABSL_GUARDED_BY(mu_);
  av1::StartWorkerRequest start_ ABSL_GUARDED_BY(mu_);
};

class AgentServiceDriverTest : public ::testing::Test {
 protected:
  AgentServiceDriverTest() {
    grpc::ServerBuilder builder;
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    AgentServiceDriver::Options options;
    options.call_deadline = std::chrono::seconds(7);
    options.task_deadline_margin = absl::Seconds(30);
    driver_ = std::make_unique<AgentServiceDriver>(
        [this] { return av1::AgentService::NewStub(server_->InProcessChannel({})); }, mesh_,
        options);
  }
  ~AgentServiceDriverTest() override {
    driver_.reset();
    server_->Shutdown(std::chrono::system_clock::now());
  }

  std::string Bearer() const { return "Bearer " + mesh_->value(); }

  MeshCredentialPtr mesh_ = std::make_shared<const MeshCredential>(MeshCredential::Random());
  FakeAgentService service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<AgentServiceDriver> driver_;
};

TEST_F(AgentServiceDriverTest, CallsAreTheMeshActingForTheOwnerWithADeadline) {
  av1::StartWorkerRequest req;
  req.mutable_config()->set_worker_type(av1::WORKER_TYPE_PO);
  req.set_operator_environment(true);
  const auto before = std::chrono::system_clock::now();
  auto started = driver_->Start("u1", req);
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->id(), "w1");
  EXPECT_EQ(started->state(), av1::WORKER_STATE_STARTING);
  EXPECT_TRUE(service_.start().operator_environment());

  Seen seen = service_.SeenOf("StartWorker");
  EXPECT_EQ(seen.authorization, Bearer());
  EXPECT_EQ(seen.act_for, "u1");
  EXPECT_GT(seen.deadline, before + std::chrono::seconds(6));
  EXPECT_LT(seen.deadline, before + std::chrono::seconds(8));

  auto stopped = driver_->Stop("u2", "w1", "the session ended");
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(stopped->state_reason(), "the session ended");
  EXPECT_EQ(service_.SeenOf("StopWorker").act_for, "u2");
  EXPECT_EQ(service_.SeenOf("StopWorker").authorization, Bearer());
}

TEST_F(AgentServiceDriverTest, ErrorsKeepTheirCodeAndMessage) {
  auto missing = driver_->Get("u1", "w9");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "worker 'w9' not found");
  // The service does not implement PauseWorker.
  EXPECT_EQ(driver_->Pause("u1", "w1").status().code(), absl::StatusCode::kUnimplemented);
}

TEST_F(AgentServiceDriverTest, WaitUntilStartedReturnsTheReadyWorkerAndLeavesTheWatch) {
  Cancellation cancel;
  auto ready = driver_->WaitUntilStarted("u1", "w1", absl::Seconds(20), cancel);
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(ready->state(), av1::WORKER_STATE_READY);
  EXPECT_TRUE(service_.watch_left_.WaitForNotificationWithTimeout(kWait));
  Seen seen = service_.SeenOf("WatchWorker");
  EXPECT_EQ(seen.authorization, Bearer());
  EXPECT_EQ(seen.act_for, "u1");
}

TEST_F(AgentServiceDriverTest, WaitUntilStartedEndsAtItsTimeout) {
  service_.never_ready = true;
  Cancellation cancel;
  auto ready = driver_->WaitUntilStarted("u1", "w1", absl::Milliseconds(200), cancel);
  EXPECT_EQ(ready.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(AgentServiceDriverTest, RunTaskStreamsTheEventsThenReturnsTheResult) {
  av1::RunTaskRequest req;
  req.set_worker_id("w1");
  req.set_prompt("hello");
  req.mutable_timeout()->set_seconds(60);
  std::vector<int64_t> events;
  Cancellation cancel;
  const auto before = std::chrono::system_clock::now();
  auto result = driver_->RunTask(
      "u1", req, [&](const av1::AgentEvent& e) { events.push_back(e.sequence()); }, cancel);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->summary(), "done: hello");
  EXPECT_THAT(events, ::testing::ElementsAre(1, 2));
  Seen seen = service_.SeenOf("RunTask");
  EXPECT_EQ(seen.authorization, Bearer());
  EXPECT_EQ(seen.act_for, "u1");
  // The task's own timeout plus the margin.
  EXPECT_GT(seen.deadline, before + std::chrono::seconds(89));
  EXPECT_LT(seen.deadline, before + std::chrono::seconds(91));
}

TEST_F(AgentServiceDriverTest, ACutOffTaskEndsPromptlyAndLeavesTheCall) {
  service_.hold_task = true;
  av1::RunTaskRequest req;
  req.set_worker_id("w1");
  req.set_prompt("hello");
  Cancellation cancel;
  absl::Notification streaming;
  absl::StatusOr<av1::TaskResult> result;
  std::thread turn([&] {
    result = driver_->RunTask(
        "u1", req,
        [&](const av1::AgentEvent& e) {
          if (e.sequence() == 2) streaming.Notify();
        },
        cancel);
  });
  ASSERT_TRUE(streaming.WaitForNotificationWithTimeout(kWait));
  cancel.Cancel();
  turn.join();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(service_.task_left_.WaitForNotificationWithTimeout(kWait))
      << "the agents side did not see the call end (so would not cancel the task)";

  // Cut off already: the next call is not even made.
  auto again = driver_->RunTask(
      "u1", req, [](const av1::AgentEvent&) {}, cancel);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kCancelled);
}

TEST_F(AgentServiceDriverTest, RunCommandStreamsTheOutputByteExactThenReturnsTheResult) {
  av1::RunCommandRequest req;
  req.set_worker_id("w1");
  req.mutable_command()->add_argv("cat");
  const std::string binary("\0\xff\n\x01bundle", 10);
  req.mutable_command()->set_stdin(binary);
  std::vector<std::pair<std::string, bool>> outputs;
  Cancellation cancel;
  const auto before = std::chrono::system_clock::now();
  auto result = driver_->RunCommand(
      "u1", req,
      [&](const av1::CommandOutput& out) { outputs.emplace_back(out.data(), out.stderr()); },
      cancel);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code(), 3);
  EXPECT_THAT(outputs, ::testing::ElementsAre(std::make_pair(binary, false),
                                              std::make_pair(std::string("warn"), true)));
  Seen seen = service_.SeenOf("RunCommand");
  EXPECT_EQ(seen.authorization, Bearer());
  EXPECT_EQ(seen.act_for, "u1");
  // No timeout: the agents side's default (10 minutes) plus the margin.
  EXPECT_GT(seen.deadline, before + std::chrono::seconds(629));
  EXPECT_LT(seen.deadline, before + std::chrono::seconds(631));

  req.set_worker_id("w2");
  auto busy = driver_->RunCommand(
      "u1", req, [](const av1::CommandOutput&) {}, cancel);
  EXPECT_EQ(busy.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(busy.status().message(), HasSubstr("worker 'w2' is busy"));
}

TEST_F(AgentServiceDriverTest, ACutOffCommandEndsPromptlyAndLeavesTheCall) {
  service_.hold_command = true;
  av1::RunCommandRequest req;
  req.set_worker_id("w1");
  req.mutable_command()->add_argv("sleep");
  req.mutable_timeout()->set_seconds(60);
  Cancellation cancel;
  absl::Notification streaming;
  absl::StatusOr<av1::CommandResult> result;
  std::thread turn([&] {
    result = driver_->RunCommand(
        "u1", req,
        [&](const av1::CommandOutput& out) {
          if (out.stderr()) streaming.Notify();
        },
        cancel);
  });
  ASSERT_TRUE(streaming.WaitForNotificationWithTimeout(kWait));
  cancel.Cancel();
  turn.join();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(service_.command_left_.WaitForNotificationWithTimeout(kWait))
      << "the agents side did not see the call end (so would not cancel the command)";
  auto again = driver_->RunCommand(
      "u1", req, [](const av1::CommandOutput&) {}, cancel);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace orchestrator::sessions
