// The sandboxes' way to the mesh: the agents component's socket forwards
// every call of the contracts, as it is, to the component serving it. The
// callee decides (tokens, bounds); unknown services go nowhere; streams and
// errors arrive whole; many calls at once end cleanly.
#include "services/agents/api/sandbox_mesh_proxy.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>

#include <filesystem>
#include <future>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "services/common/crypto/secret_box.h"
#include "services/orchestratord/components.h"
#include "tests/support/test_mesh.h"

namespace orchestrator::agents {
namespace {

using ::testing::HasSubstr;
using testing::TestMesh;

class SandboxMeshProxyTest : public ::testing::Test {
 protected:
  SandboxMeshProxyTest()
      : mesh_("admin,projects,jobs", [](MeshConfig& c) { c.demo_jobs = true; }),
        socket_((std::filesystem::temp_directory_path() / NewId("proxy_") += ".sock").string()) {
    auto names = ComponentNames();
    auto proxy = SandboxMeshProxy::Start(socket_, "", {names.begin(), names.end()},
                                         [this](const std::string&) { return mesh_.channel(); });
    EXPECT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = *std::move(proxy);
    sandbox_ = grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials());
    std::tie(alice_id_, alice_) = mesh_.NewUser("alice");
  }
  ~SandboxMeshProxyTest() override {
    proxy_.reset();
    std::filesystem::remove(socket_);
  }

  TestMesh mesh_;
  std::string socket_;
  std::unique_ptr<SandboxMeshProxy> proxy_;
  std::shared_ptr<grpc::Channel> sandbox_;
  std::string alice_id_, alice_;
};

TEST_F(SandboxMeshProxyTest, ACallReachesItsComponentWhichAuthenticatesIt) {
  auto projects = projects::v1::ProjectService::NewStub(sandbox_);
  projects::v1::CreateProjectRequest create;
  create.mutable_project()->set_name("via-proxy");
  projects::v1::CreateProjectResponse created;
  ASSERT_TRUE(projects->CreateProject(TestMesh::Context(alice_).get(), create, &created).ok());
  EXPECT_EQ(created.project().owner_id(), alice_id_);

  // The callee's refusals arrive as they are.
  grpc::Status s =
      projects->CreateProject(TestMesh::Context("orc_not-a-token").get(), create, &created);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  create.mutable_project()->set_name(std::string(1000, 'x'));
  s = projects->CreateProject(TestMesh::Context(alice_).get(), create, &created);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("project.name"));
}

TEST_F(SandboxMeshProxyTest, OnlyTheMeshsComponentsAreForwarded) {
  grpc::GenericStub stub(sandbox_);
  // (Health and reflection are the proxy's own, as on every server here.)
  for (const char* method : {"/orchestrator.qwxz.v1.X/Y", "/orchestrator.projects/ListProjects",
                             "/orchestrator.Projects.v1.ProjectService/ListProjects", "/x"}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1), response;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response,
                   [&](grpc::Status st) { done.set_value(st); });
    EXPECT_EQ(done.get_future().get().error_code(), grpc::StatusCode::UNIMPLEMENTED) << method;
  }
}

TEST_F(SandboxMeshProxyTest, AStreamArrivesWholeToItsLastEvent) {
  auto jobs = jobs::v1::JobService::NewStub(sandbox_);
  jobs::v1::EnqueueDemoJobRequest enqueue;
  enqueue.set_kind("demo.sleep");
  (*enqueue.mutable_params()->mutable_fields())["seconds"].set_number_value(0.3);
  (*enqueue.mutable_params()->mutable_fields())["steps"].set_number_value(3);
  jobs::v1::EnqueueDemoJobResponse job;
  ASSERT_TRUE(jobs->EnqueueDemoJob(TestMesh::Context(alice_).get(), enqueue, &job).ok());
  jobs::v1::WatchJobRequest watch;
  watch.set_job_id(job.job().id());
  auto ctx = TestMesh::Context(alice_);
  auto reader = jobs->WatchJob(ctx.get(), watch);
  jobs::v1::WatchJobResponse event;
  int64_t expected = 1;
  jobs::v1::JobState last = jobs::v1::JOB_STATE_UNSPECIFIED;
  while (reader->Read(&event)) {
    EXPECT_EQ(event.event().sequence(), expected++);
    if (event.event().has_state_changed()) last = event.event().state_changed().to_state();
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(last, jobs::v1::JOB_STATE_SUCCEEDED);
}

TEST_F(SandboxMeshProxyTest, ManyCallsAtOnceAllEndCleanly) {
  std::vector<std::thread> callers;
  std::atomic<int> ok{0}, refused{0};
  for (int t = 0; t < 8; ++t) {
    callers.emplace_back([&, t] {
      auto projects = projects::v1::ProjectService::NewStub(sandbox_);
      for (int i = 0; i < 40; ++i) {
        projects::v1::ListProjectsResponse list;
        // Every other caller gives up at once: cancelled calls end too.
        auto ctx = TestMesh::Context(alice_);
        if ((t + i) % 5 == 0) ctx->TryCancel();
        grpc::Status s = projects->ListProjects(ctx.get(), {}, &list);
        (s.ok() ? ok : refused)++;
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(ok + refused, 320);
  EXPECT_GT(ok, 200);
  // The proxy still serves.
  auto projects = projects::v1::ProjectService::NewStub(sandbox_);
  projects::v1::ListProjectsResponse list;
  EXPECT_TRUE(projects->ListProjects(TestMesh::Context(alice_).get(), {}, &list).ok());
}

}  // namespace
}  // namespace orchestrator::agents
