// AgentService's gRPC adapter over a mock of the agents domain (the Workers
// port): the caller the interceptor authenticated reaches the domain, the
// domain's errors reach the caller with their codes, and a task's events
// and result stream back in order. No sandbox, no database.
#include "services/agents/api/agent_service.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <optional>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/commands/profiles.h"
#include "services/common/server/service_host.h"
#include "tests/mocks/mock_workers.h"

namespace orchestrator::agents {
namespace {

using ::testing::_;
using ::testing::Field;
using ::testing::Invoke;
using ::testing::Return;
using ::testing::StrictMock;

// Every token is alice's, limited to the agent.* grants; "alice-agent-<profile>"
// is an agent token of hers with what a worker of that role profile holds.
class AliceVerifier final : public TokenVerifier {
 public:
  absl::StatusOr<Principal> Verify(absl::string_view token) override {
    Principal p;
    p.user_id = "usr_alice";
    p.token_id = "tok_alice";
    p.role_grants = {"agent.*"};
    if (token == "alice") return p;
    for (const auto& profile : commands::Profiles()) {
      if (token != "alice-agent-" + profile.name) continue;
      p.kind = PrincipalKind::kAgent;
      p.role_grants = {"*"};
      p.token_grants = profile.grants;
      // What the spawner adds to every worker's token.
      p.token_grants.push_back("runner.connect");
      p.token_grants.push_back("agent.task.finish");
      return p;
    }
    return absl::UnauthenticatedError("invalid token");
  }
};

class AgentServiceTest : public ::testing::Test {
 protected:
  AgentServiceTest()
      : workers_(std::make_shared<MockWorkers>()),
        service_(workers_, std::make_shared<BoundedExecutor>(2, 16)),
        host_(HostOptions{.listen = "127.0.0.1:0"}) {
    host_.SetTokenVerifier(std::make_shared<AliceVerifier>());
    host_.Register(&service_, v1::AgentService::service_full_name());
    EXPECT_TRUE(host_.Start().ok());
    stub_ = v1::AgentService::NewStub(
        grpc::CreateChannel(host_.address(), grpc::InsecureChannelCredentials()));
  }
  ~AgentServiceTest() override { host_.Shutdown(); }

  std::unique_ptr<grpc::ClientContext> As(const std::string& token) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", "Bearer " + token);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return ctx;
  }

  std::shared_ptr<MockWorkers> workers_;
  AgentServiceImpl service_;
  ServiceHost host_;
  std::unique_ptr<v1::AgentService::Stub> stub_;
};

TEST_F(AgentServiceTest, TheAuthenticatedCallerReachesTheDomainAndItsAnswerComesBack) {
  v1::Worker started;
  started.set_id("wrk_1");
  started.set_owner_id("usr_alice");
  EXPECT_CALL(*workers_, Start(Field(&Principal::user_id, "usr_alice"), _))
      .WillOnce(Return(started));
  v1::StartWorkerRequest req;
  req.mutable_config()->set_worker_type(v1::WORKER_TYPE_DEVELOPER);
  v1::StartWorkerResponse resp;
  grpc::Status s = stub_->StartWorker(As("alice").get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.worker().id(), "wrk_1");

  // A stranger never reaches the domain.
  EXPECT_EQ(stub_->StartWorker(As("mallory").get(), req, &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(AgentServiceTest, TheDomainsRefusalKeepsItsCodeAndMessage) {
  EXPECT_CALL(*workers_, Stop(_, "wrk_9", _))
      .WillOnce(Return(absl::NotFoundError("worker 'wrk_9' not found")));
  v1::StopWorkerRequest req;
  req.set_worker_id("wrk_9");
  v1::StopWorkerResponse resp;
  grpc::Status s = stub_->StopWorker(As("alice").get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "worker 'wrk_9' not found");
}

TEST_F(AgentServiceTest, ATasksEventsThenItsResultStreamBackInOrder) {
  EXPECT_CALL(*workers_, RunTask(_, _, _, _))
      .WillOnce(Invoke(
          [](const Principal&, const v1::RunTaskRequest&, TaskListener listener, uint64_t* handle) {
            *handle = 7;
            for (int i = 0; i < 3; ++i) {
              v1::AgentEvent e;
              e.mutable_text()->set_text(absl::StrCat("step ", i));
              listener.on_event(e);
            }
            v1::TaskResult result;
            result.set_task_id("tsk_1");
            result.set_status(v1::TASK_STATUS_SUCCEEDED);
            result.set_summary("done");
            listener.on_result(result);
            return absl::StatusOr<std::string>("tsk_1");
          }));
  EXPECT_CALL(*workers_, Detach).Times(::testing::AnyNumber());
  v1::RunTaskRequest req;
  req.set_worker_id("wrk_1");
  req.set_prompt("do it");
  auto ctx = As("alice");
  auto reader = stub_->RunTask(ctx.get(), req);
  v1::RunTaskResponse message;
  std::vector<std::string> seen;
  while (reader->Read(&message)) {
    if (message.has_event()) seen.push_back(message.event().text().text());
    if (message.has_result()) seen.push_back("result: " + message.result().summary());
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_THAT(seen, ::testing::ElementsAre("step 0", "step 1", "step 2", "result: done"));
}

v1::RunCommandRequest Command(const std::string& worker_id) {
  v1::RunCommandRequest req;
  req.set_worker_id(worker_id);
  req.mutable_command()->add_argv("git");
  req.mutable_command()->add_argv("bundle");
  return req;
}

struct CommandRun {
  std::vector<v1::CommandOutput> outputs;
  std::optional<v1::CommandResult> result;
  grpc::Status status;
};

CommandRun Read(grpc::ClientReaderInterface<v1::RunCommandResponse>& reader) {
  CommandRun run;
  v1::RunCommandResponse message;
  while (reader.Read(&message)) {
    if (message.has_output()) run.outputs.push_back(message.output());
    if (message.has_result()) run.result = message.result();
  }
  run.status = reader.Finish();
  return run;
}

TEST_F(AgentServiceTest, ACommandsOutputThenItsResultStreamBackByteExact) {
  std::string binary;
  for (int i = 0; i < 65536; ++i) binary.push_back(static_cast<char>(i * 7));
  EXPECT_CALL(*workers_, RunCommand(Field(&Principal::user_id, "usr_alice"), _, _, _))
      .WillOnce(Invoke([&](const Principal&, const v1::RunCommandRequest& req,
                           TaskListener listener, uint64_t* handle) {
        EXPECT_EQ(req.command().argv(1), "bundle");
        *handle = 7;
        v1::AgentEvent e;
        e.mutable_text()->set_text("not a command's: never streamed");
        listener.on_event(e);
        e.mutable_command_output()->set_data(binary);
        listener.on_event(e);
        e.mutable_command_output()->set_data("oops");
        e.mutable_command_output()->set_stderr(true);
        listener.on_event(e);
        v1::TaskResult result;
        result.set_status(v1::TASK_STATUS_FAILED);
        result.mutable_command()->set_exit_code(2);
        result.mutable_command()->set_stderr_tail("oops");
        listener.on_result(result);
        return absl::StatusOr<std::string>("tsk_1");
      }));
  EXPECT_CALL(*workers_, Detach).Times(::testing::AnyNumber());
  auto ctx = As("alice");
  auto reader = stub_->RunCommand(ctx.get(), Command("wrk_1"));
  CommandRun run = Read(*reader);
  ASSERT_TRUE(run.status.ok()) << run.status.error_message();
  ASSERT_EQ(run.outputs.size(), 2u);
  EXPECT_EQ(run.outputs[0].data(), binary);
  EXPECT_FALSE(run.outputs[0].stderr());
  EXPECT_EQ(run.outputs[1].data(), "oops");
  EXPECT_TRUE(run.outputs[1].stderr());
  ASSERT_TRUE(run.result.has_value());
  EXPECT_EQ(run.result->exit_code(), 2);
  EXPECT_EQ(run.result->stderr_tail(), "oops");
}

TEST_F(AgentServiceTest, ACommandWhoseWorkerEndedUnderItEndsWithTheReasonNotAResult) {
  EXPECT_CALL(*workers_, RunCommand)
      .WillOnce(Invoke([](const Principal&, const v1::RunCommandRequest&, TaskListener listener,
                          uint64_t* handle) {
        *handle = 1;
        v1::TaskResult result;
        result.set_status(v1::TASK_STATUS_FAILED);
        result.set_summary("the runner's connection ended: gone");
        listener.on_result(result);
        return absl::StatusOr<std::string>("tsk_1");
      }))
      .WillOnce(Invoke([](const Principal&, const v1::RunCommandRequest&, TaskListener listener,
                          uint64_t* handle) {
        *handle = 2;
        v1::TaskResult result;
        result.set_status(v1::TASK_STATUS_CANCELLED);
        result.set_summary("stopped by alice");
        listener.on_result(result);
        return absl::StatusOr<std::string>("tsk_2");
      }));
  EXPECT_CALL(*workers_, Detach).Times(::testing::AnyNumber());
  auto failed_ctx = As("alice");
  CommandRun failed = Read(*stub_->RunCommand(failed_ctx.get(), Command("wrk_1")));
  EXPECT_EQ(failed.status.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_THAT(failed.status.error_message(), ::testing::HasSubstr("connection ended: gone"));
  EXPECT_FALSE(failed.result.has_value());
  auto stopped_ctx = As("alice");
  CommandRun stopped = Read(*stub_->RunCommand(stopped_ctx.get(), Command("wrk_1")));
  EXPECT_EQ(stopped.status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_THAT(stopped.status.error_message(), ::testing::HasSubstr("stopped by alice"));
}

TEST_F(AgentServiceTest, LeavingACommandCancelsIt) {
  absl::Notification started, detached;
  EXPECT_CALL(*workers_, RunCommand)
      .WillOnce(Invoke([&](const Principal&, const v1::RunCommandRequest&, TaskListener listener,
                           uint64_t* handle) {
        *handle = 42;
        v1::AgentEvent e;
        e.mutable_command_output()->set_data("working");
        listener.on_event(e);
        started.Notify();
        return absl::StatusOr<std::string>("tsk_1");
      }));
  EXPECT_CALL(*workers_, Detach("wrk_1", 42, true)).WillOnce(Invoke([&] { detached.Notify(); }));
  auto ctx = As("alice");
  auto reader = stub_->RunCommand(ctx.get(), Command("wrk_1"));
  v1::RunCommandResponse first;
  ASSERT_TRUE(reader->Read(&first));
  EXPECT_EQ(first.output().data(), "working");
  ctx->TryCancel();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(detached.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

TEST_F(AgentServiceTest, ACommandOutOfItsBoundsOrWithoutTheGrantNeverReachesTheDomain) {
  auto strict = std::make_shared<StrictMock<MockWorkers>>();
  AgentServiceImpl service(strict, std::make_shared<BoundedExecutor>(1, 4));
  ServiceHost host(HostOptions{.listen = "127.0.0.1:0"});
  host.SetTokenVerifier(std::make_shared<AliceVerifier>());
  host.Register(&service, v1::AgentService::service_full_name());
  ASSERT_TRUE(host.Start().ok());
  auto stub = v1::AgentService::NewStub(
      grpc::CreateChannel(host.address(), grpc::InsecureChannelCredentials()));

  v1::RunCommandRequest big = Command("wrk_1");
  big.mutable_command()->set_stdin(std::string(3 * 1024 * 1024 + 1, 'x'));
  auto big_ctx = As("alice");
  CommandRun refused = Read(*stub->RunCommand(big_ctx.get(), big));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(refused.status.error_message(), ::testing::HasSubstr("command.stdin"));

  v1::RunCommandRequest slow = Command("wrk_1");
  slow.mutable_timeout()->set_seconds(3601);
  auto slow_ctx = As("alice");
  CommandRun too_long = Read(*stub->RunCommand(slow_ctx.get(), slow));
  EXPECT_EQ(too_long.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(too_long.status.error_message(), ::testing::HasSubstr("timeout"));

  // No agent's token runs commands in a sandbox, whatever its role profile.
  for (const auto& profile : commands::Profiles()) {
    auto ctx = As("alice-agent-" + profile.name);
    CommandRun denied = Read(*stub->RunCommand(ctx.get(), Command("wrk_1")));
    EXPECT_EQ(denied.status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << profile.name;
  }
  host.Shutdown();
}

}  // namespace
}  // namespace orchestrator::agents
