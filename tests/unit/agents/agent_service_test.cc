// AgentService's gRPC adapter over a mock of the agents domain (the Workers
// port): the caller the interceptor authenticated reaches the domain, the
// domain's errors reach the caller with their codes, and a task's events
// and result stream back in order. No sandbox, no database.
#include "services/agents/api/agent_service.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/server/service_host.h"
#include "tests/mocks/mock_workers.h"

namespace orchestrator::agents {
namespace {

using ::testing::_;
using ::testing::Field;
using ::testing::Invoke;
using ::testing::Return;

// Every token is alice's, limited to the agent.* grants.
class AliceVerifier final : public TokenVerifier {
 public:
  absl::StatusOr<Principal> Verify(absl::string_view token) override {
    if (token != "alice") return absl::UnauthenticatedError("invalid token");
    Principal p;
    p.user_id = "usr_alice";
    p.token_id = "tok_alice";
    p.role_grants = {"agent.*"};
    return p;
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

}  // namespace
}  // namespace orchestrator::agents
