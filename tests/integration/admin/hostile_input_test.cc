// The interceptor against hostile callers, through a real TCP channel:
// requests that once aborted the process, bytes that are no request, a
// caller flooding the mesh, refusals that must leave an audit trail, and
// derived tokens revoked with the token they came from.
#include <grpcpp/generic/generic_stub.h>

#include <future>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/admin/v1/admin.grpc.pb.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "services/common/status/status.h"
#include "tests/support/log_capture.h"
#include "tests/support/test_mesh.h"

namespace orchestrator {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::TestMesh;

grpc::Status Identity(TestMesh& mesh, const std::string& token) {
  auto admin = admin::v1::AdminService::NewStub(mesh.channel());
  admin::v1::GetIdentityResponse me;
  return admin->GetIdentity(TestMesh::Context(token).get(), {}, &me);
}

TEST(HostileInput, ATtlBeyondAnyClockIsRefusedAndTheServerLives) {
  TestMesh mesh;
  auto [alice_id, alice] = mesh.NewUser("alice");
  auto admin = admin::v1::AdminService::NewStub(mesh.channel());
  admin::v1::CreateTokenRequest req;
  req.set_user_id(alice_id);
  req.mutable_ttl()->set_seconds(315576000000);
  admin::v1::CreateTokenResponse created;
  grpc::Status s = admin->CreateToken(TestMesh::Context(alice).get(), req, &created);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), ::testing::StartsWith("ttl:"));
  req.mutable_ttl()->set_seconds(10);
  req.mutable_ttl()->set_nanos(-1);
  s = admin->CreateToken(TestMesh::Context(alice).get(), req, &created);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(Identity(mesh, alice).ok());  // still serving
}

TEST(HostileInput, TheContractsBoundsAreEnforcedBeforeTheDomainRuns) {
  TestMesh mesh;
  auto projects = projects::v1::ProjectService::NewStub(mesh.channel());
  projects::v1::CreateProjectRequest req;
  req.mutable_project()->set_name("shop");
  // The domain's own check of display names never looked for bidi overrides.
  req.mutable_project()->set_display_name("invoice\u202Efdp.exe");
  projects::v1::CreateProjectResponse resp;
  grpc::Status s = projects->CreateProject(TestMesh::Context(mesh.admin_token()).get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), ::testing::StartsWith("project.display_name:"));
  projects::v1::ListProjectsResponse list;
  ASSERT_TRUE(projects->ListProjects(TestMesh::Context(mesh.admin_token()).get(), {}, &list).ok());
  EXPECT_EQ(list.projects_size(), 0) << "nothing was created";
}

TEST(HostileInput, BytesThatAreNoRequestAreInvalidArgument) {
  TestMesh mesh;
  grpc::GenericStub stub(mesh.channel());
  const char raw[] = {'\xff', '\xff', '\xff', '\xff'};
  grpc::Slice slice(raw, sizeof(raw));
  grpc::ByteBuffer request(&slice, 1), response;
  auto ctx = TestMesh::Context(mesh.admin_token());
  std::promise<grpc::Status> done;
  stub.UnaryCall(ctx.get(), "/orchestrator.projects.v1.ProjectService/GetProject",
                 grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) { done.set_value(s); });
  grpc::Status s = done.get_future().get();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(),
              HasSubstr("could not be parsed as orchestrator.projects.v1.GetProjectRequest"));
}

TEST(HostileInput, ErrorsNeverEchoUnboundedInput) {
  TestMesh mesh;
  auto jobs = jobs::v1::JobService::NewStub(mesh.channel());
  jobs::v1::EnqueueDemoJobRequest req;
  req.set_kind(std::string(100000, 'k'));
  jobs::v1::EnqueueDemoJobResponse resp;
  grpc::Status s = jobs->EnqueueDemoJob(TestMesh::Context(mesh.admin_token()).get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), ::testing::StartsWith("kind:"));
  EXPECT_LT(s.error_message().size(), 200u);
}

TEST(HostileInput, AFloodingTokenIsSlowedDownAndOthersAreNot) {
  TestMesh mesh("all", [](MeshConfig& c) {
    c.rate_limit_per_token = {5, 5};
    c.rate_limit_per_user = {100, 100};
  });
  auto [alice_id, alice] = mesh.NewUser("alice");
  auto [bob_id, bob] = mesh.NewUser("bob");
  int refused = 0;
  grpc::Status last;
  for (int i = 0; i < 30; ++i) {
    grpc::Status s = Identity(mesh, alice);
    if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++refused;
      last = s;
    }
  }
  EXPECT_GE(refused, 20);
  EXPECT_THAT(last.error_message(), HasSubstr("rate limit"));
  auto delay = RetryDelayOf(last);
  ASSERT_TRUE(delay.has_value()) << "RESOURCE_EXHAUSTED without a google.rpc.RetryInfo";
  EXPECT_GT(delay->count(), 0);
  EXPECT_LE(delay->count(), 1000);
  EXPECT_TRUE(Identity(mesh, bob).ok()) << "one user's flood must not starve another";
}

TEST(HostileInput, EveryRefusalIsLoggedWithWhoTried) {
  TestMesh mesh;
  auto [alice_id, alice] = mesh.NewUser("alice", {"project.get"});
  testing::LogCapture log;
  auto projects = projects::v1::ProjectService::NewStub(mesh.channel());
  projects::v1::CreateProjectRequest req;
  req.mutable_project()->set_name("shop");
  projects::v1::CreateProjectResponse resp;
  ASSERT_EQ(projects->CreateProject(TestMesh::Context(alice).get(), req, &resp).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  mesh.Stop();  // every call's line is written
  EXPECT_THAT(log.text(), HasSubstr("rpc=CreateProject"));
  EXPECT_THAT(log.text(), HasSubstr("user=" + alice_id));
  EXPECT_THAT(log.text(), HasSubstr("code=PERMISSION_DENIED"));
  EXPECT_THAT(log.text(), Not(HasSubstr(alice)));  // never the token
}

TEST(HostileInput, RevokingATokenRevokesEveryTokenDerivedFromIt) {
  TestMesh mesh;
  auto [alice_id, alice] = mesh.NewUser("alice");
  auto admin = admin::v1::AdminService::NewStub(mesh.channel());
  auto derive = [&](const std::string& from, std::vector<std::string> permissions) {
    admin::v1::CreateTokenRequest req;
    req.set_user_id(alice_id);
    for (const auto& p : permissions) req.add_permissions(p);
    admin::v1::CreateTokenResponse created;
    grpc::Status s = admin->CreateToken(TestMesh::Context(from).get(), req, &created);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return created;
  };
  auto child = derive(alice, {"project.*", "admin.token.*"});
  auto grandchild = derive(child.value(), {});
  // The grandchild inherited its parent's limits instead of the whole role.
  EXPECT_THAT(grandchild.token().permissions(),
              ::testing::ElementsAre("project.*", "admin.token.*"));
  EXPECT_EQ(grandchild.token().parent_token_id(), child.token().id());
  ASSERT_TRUE(Identity(mesh, grandchild.value()).ok());

  admin::v1::RevokeTokenRequest revoke;
  revoke.set_token_id(child.token().id());
  admin::v1::RevokeTokenResponse revoked;
  ASSERT_TRUE(admin->RevokeToken(TestMesh::Context(alice).get(), revoke, &revoked).ok());
  EXPECT_EQ(Identity(mesh, grandchild.value()).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(Identity(mesh, alice).ok());  // the parent's own token is untouched

  // A child created while its parent was being revoked (the cascade did not
  // see it yet) still dies with the parent: verification walks the chain.
  auto parent = derive(alice, {"project.*", "admin.token.*"});
  auto late_child = derive(parent.value(), {});
  auto pool = mesh.database().NewPool(1);
  ASSERT_TRUE(pool->Exec({"revoke_only_parent",
                          "UPDATE admin.tokens SET revoke_time = now() WHERE id = $1"},
                         {parent.token().id()})
                  .ok());
  EXPECT_EQ(Identity(mesh, late_child.value()).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

}  // namespace
}  // namespace orchestrator
