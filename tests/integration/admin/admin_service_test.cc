// Identity end to end: tokens, revocation, the interceptor's decisions, health,
// and a mesh split across two servers.
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "orchestrator/admin/v1/admin.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "orchestrator/scheduler/v1/scheduler.grpc.pb.h"
#include "services/common/crypto/secret_box.h"
#include "tests/support/log_capture.h"
#include "tests/support/test_mesh.h"

namespace orchestrator::admin {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::TestMesh;

class AdminServiceTest : public ::testing::Test {
 protected:
  AdminServiceTest() : admin_(v1::AdminService::NewStub(mesh_.channel())) {}

  grpc::Status ListProjects(const std::string& token) {
    auto stub = projects::v1::ProjectService::NewStub(mesh_.channel());
    projects::v1::ListProjectsResponse resp;
    return stub->ListProjects(TestMesh::Context(token).get(), {}, &resp);
  }

  TestMesh mesh_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
};

TEST_F(AdminServiceTest, IdentityTellsWhoCallsAndWhatTheyMayDo) {
  auto [alice_id, alice] = mesh_.NewUser("alice", {"project.get"});
  v1::GetIdentityResponse me;
  ASSERT_TRUE(admin_->GetIdentity(TestMesh::Context(alice).get(), {}, &me).ok());
  EXPECT_EQ(me.user().id(), alice_id);
  EXPECT_EQ(me.user().role(), v1::ROLE_USER);
  EXPECT_THAT(me.token().permissions(), ::testing::ElementsAre("project.get"));
  EXPECT_THAT(me.role_permissions(), ::testing::Contains("project.*"));
  EXPECT_THAT(me.DebugString(), Not(HasSubstr(alice)));
}

TEST_F(AdminServiceTest, ARevokedTokenStopsWorkingAtOnce) {
  auto [alice_id, alice] = mesh_.NewUser("alice");
  ASSERT_TRUE(ListProjects(alice).ok());  // now cached by the interceptor

  v1::ListTokensRequest list;
  list.set_user_id(alice_id);
  v1::ListTokensResponse tokens;
  ASSERT_TRUE(admin_->ListTokens(TestMesh::Context(alice).get(), list, &tokens).ok());
  ASSERT_EQ(tokens.tokens_size(), 1);
  v1::RevokeTokenRequest revoke;
  revoke.set_token_id(tokens.tokens(0).id());
  v1::RevokeTokenResponse revoked;
  ASSERT_TRUE(admin_->RevokeToken(TestMesh::Context(alice).get(), revoke, &revoked).ok());
  EXPECT_TRUE(revoked.token().has_revoke_time());

  grpc::Status after = ListProjects(alice);
  EXPECT_EQ(after.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(after.error_message(), HasSubstr("revoked"));
}

TEST_F(AdminServiceTest, UsersManageOnlyTheirOwnTokensAndCannotAdminister) {
  auto [alice_id, alice] = mesh_.NewUser("alice");
  auto [bob_id, bob] = mesh_.NewUser("bob");
  v1::CreateTokenRequest for_bob;
  for_bob.set_user_id(bob_id);
  v1::CreateTokenResponse created;
  EXPECT_EQ(admin_->CreateToken(TestMesh::Context(alice).get(), for_bob, &created).error_code(),
            grpc::StatusCode::NOT_FOUND);

  v1::CreateTokenRequest own;
  own.set_user_id(alice_id);
  own.add_permissions("project.get");
  own.set_description("read-only for my agent");
  ASSERT_TRUE(admin_->CreateToken(TestMesh::Context(alice).get(), own, &created).ok());
  EXPECT_THAT(created.value(), HasSubstr("orc_"));
  EXPECT_EQ(ListProjects(created.value()).error_code(), grpc::StatusCode::PERMISSION_DENIED);

  v1::CreateUserRequest user;
  user.mutable_user()->set_name("mallory");
  v1::CreateUserResponse resp;
  grpc::Status s = admin_->CreateUser(TestMesh::Context(alice).get(), user, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("admin.user.create"));
}

TEST_F(AdminServiceTest, DisabledUsersAreLockedOut) {
  auto [alice_id, alice] = mesh_.NewUser("alice");
  ASSERT_TRUE(ListProjects(alice).ok());
  v1::DisableUserRequest disable;
  disable.set_user_id(alice_id);
  v1::DisableUserResponse disabled;
  ASSERT_TRUE(
      admin_->DisableUser(TestMesh::Context(mesh_.admin_token()).get(), disable, &disabled).ok());
  EXPECT_TRUE(disabled.user().disabled());
  EXPECT_EQ(ListProjects(alice).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(AdminServiceTest, DuplicateUserNamesAndBadNamesAreRefused) {
  mesh_.NewUser("carol");
  v1::CreateUserRequest dup;
  dup.mutable_user()->set_name("carol");
  v1::CreateUserResponse resp;
  EXPECT_EQ(
      admin_->CreateUser(TestMesh::Context(mesh_.admin_token()).get(), dup, &resp).error_code(),
      grpc::StatusCode::ALREADY_EXISTS);
  dup.mutable_user()->set_name("Carol Smith");
  grpc::Status s = admin_->CreateUser(TestMesh::Context(mesh_.admin_token()).get(), dup, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("user.name"));
}

TEST_F(AdminServiceTest, EveryComponentAuthenticatesThroughTheOneInterceptor) {
  auto scheduler = scheduler::v1::SchedulerService::NewStub(mesh_.channel());
  scheduler::v1::ListTasksResponse resp;
  EXPECT_EQ(scheduler->ListTasks(TestMesh::Context("").get(), {}, &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(scheduler->ListTasks(TestMesh::Context(mesh_.admin_token()).get(), {}, &resp).ok());
}

TEST_F(AdminServiceTest, RequestIdIsEchoedAndLoggedOncePerRpc) {
  testing::LogCapture log;
  auto ctx = TestMesh::Context(mesh_.admin_token());
  ctx->AddMetadata("x-request-id", "req-trace-123");
  v1::GetIdentityResponse me;
  ASSERT_TRUE(admin_->GetIdentity(ctx.get(), {}, &me).ok());
  auto echoed = ctx->GetServerInitialMetadata().find("x-request-id");
  ASSERT_NE(echoed, ctx->GetServerInitialMetadata().end());
  EXPECT_EQ(std::string(echoed->second.data(), echoed->second.size()), "req-trace-123");

  auto other = TestMesh::Context(mesh_.admin_token());
  ASSERT_TRUE(admin_->GetIdentity(other.get(), {}, &me).ok());
  EXPECT_NE(other->GetServerInitialMetadata().find("x-request-id"),
            other->GetServerInitialMetadata().end());  // generated when absent

  mesh_.Stop();  // every call has completed and logged
  const std::string text = log.text();
  EXPECT_THAT(text, HasSubstr("svc=orchestrator.admin.v1.AdminService rpc=GetIdentity "
                              "request_id=req-trace-123"));
  EXPECT_THAT(text, HasSubstr("code=OK latency_ms="));
  EXPECT_THAT(text, Not(HasSubstr(mesh_.admin_token())));
}

TEST_F(AdminServiceTest, HealthReportsEachComponentAndGoesNotServingOnShutdown) {
  auto health = grpc::health::v1::Health::NewStub(mesh_.channel());
  for (const char* service :
       {"", "orchestrator.projects.v1.ProjectService", "orchestrator.admin.v1.AdminService",
        "orchestrator.jobs.v1.JobService"}) {
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status s = health->Check(TestMesh::Context("").get(), req, &resp);  // no token needed
    ASSERT_TRUE(s.ok()) << service << ": " << s.error_message();
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
  grpc::health::v1::HealthCheckRequest unknown;
  unknown.set_service("orchestrator.nope.v1.NopeService");
  grpc::health::v1::HealthCheckResponse resp;
  EXPECT_EQ(health->Check(TestMesh::Context("").get(), unknown, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // Watch sees the transition to NOT_SERVING when the process drains.
  grpc::ClientContext watch_ctx;
  grpc::health::v1::HealthCheckRequest watch_req;
  watch_req.set_service("orchestrator.projects.v1.ProjectService");
  auto watch = health->Watch(&watch_ctx, watch_req);
  ASSERT_TRUE(watch->Read(&resp));
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  std::thread stopper([this] { mesh_.Stop(); });
  bool saw_not_serving = false;
  while (watch->Read(&resp)) {
    if (resp.status() == grpc::health::v1::HealthCheckResponse::NOT_SERVING) {
      saw_not_serving = true;
      break;
    }
  }
  watch_ctx.TryCancel();
  stopper.join();
  EXPECT_TRUE(saw_not_serving);
}

TEST_F(AdminServiceTest, BootstrapHappensOnceAcrossRestarts) {
  const std::string first = mesh_.admin_token();
  mesh_.Restart();
  admin_ = v1::AdminService::NewStub(mesh_.channel());
  v1::ListUsersResponse users;
  ASSERT_TRUE(admin_->ListUsers(TestMesh::Context(first).get(), {}, &users).ok());
  ASSERT_EQ(users.users_size(), 1);
  EXPECT_EQ(users.users(0).name(), "admin");
  EXPECT_EQ(users.users(0).role(), v1::ROLE_ADMIN);
}

// ProjectService in a process of its own over its own database, verifying
// tokens through `admin_side`'s AdminService.
std::unique_ptr<Mesh> StartProjectsApart(const TestMesh& admin_side,
                                         const testing::TestDatabase& projects_db) {
  MeshConfig config;
  config.listen = "127.0.0.1:0";
  config.services = {"projects"};
  config.remote_addrs["admin"] = admin_side.address();
  config.database_url = projects_db.conninfo();
  // One per process: ctest runs the tests of this file side by side.
  const std::string key_file = absl::StrCat(::testing::TempDir(), "/split_key_", ::getpid());
  {
    std::FILE* f = std::fopen(key_file.c_str(), "w");
    std::fputs(GenerateSecretKeyBase64().c_str(), f);
    std::fclose(f);
  }
  config.secrets_key_file = key_file;
  config.mesh_credential_file = admin_side.config().mesh_credential_file;
  auto projects_side = Mesh::Create(config);
  EXPECT_TRUE(projects_side.ok()) << projects_side.status();
  if (!projects_side.ok()) return nullptr;
  EXPECT_TRUE((*projects_side)->Start().ok());
  return *std::move(projects_side);
}

TEST(SplitMesh, AComponentHostedElsewhereAuthenticatesThroughAdminService) {
  TestMesh admin_side("admin");
  auto [alice_id, alice] = admin_side.NewUser("alice", {"project.*"});

  testing::TestDatabase projects_db;
  auto projects_side = StartProjectsApart(admin_side, projects_db);
  ASSERT_NE(projects_side, nullptr);

  auto stub = projects::v1::ProjectService::NewStub(
      grpc::CreateChannel(projects_side->address(), grpc::InsecureChannelCredentials()));
  projects::v1::CreateProjectRequest req;
  req.mutable_project()->set_name("split");
  projects::v1::CreateProjectResponse resp;
  grpc::Status s = stub->CreateProject(TestMesh::Context(alice).get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.project().owner_id(), alice_id);
  EXPECT_EQ(stub->CreateProject(TestMesh::Context("orc_nope").get(), req, &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  admin_side.Stop();  // AdminService gone: a token not yet cached cannot be checked
  EXPECT_EQ(stub->CreateProject(TestMesh::Context("orc_unseen").get(), req, &resp).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  projects_side->Shutdown();
}

// The project a worker's token is limited to travels with its identity
// (GetIdentity) to a component that verifies tokens remotely.
TEST(SplitMesh, AWorkersProjectLimitHoldsWhereProjectsRunApart) {
  TestMesh admin_side("admin");
  auto [alice_id, alice] = admin_side.NewUser("alice");
  testing::TestDatabase projects_db;
  auto projects_side = StartProjectsApart(admin_side, projects_db);
  ASSERT_NE(projects_side, nullptr);
  auto stub = projects::v1::ProjectService::NewStub(
      grpc::CreateChannel(projects_side->address(), grpc::InsecureChannelCredentials()));
  std::string ids[2];
  for (int i = 0; i < 2; ++i) {
    projects::v1::CreateProjectRequest req;
    req.mutable_project()->set_name(i == 0 ? "project-a" : "project-b");
    projects::v1::CreateProjectResponse resp;
    ASSERT_TRUE(stub->CreateProject(TestMesh::Context(alice).get(), req, &resp).ok());
    ids[i] = resp.project().id();
  }

  const std::string agent =
      admin_side.MintWorkerToken(alice_id, ids[0], {"project.get", "project.list"});

  projects::v1::GetProjectRequest get;
  projects::v1::GetProjectResponse got;
  get.set_project_id(ids[0]);
  grpc::Status s = stub->GetProject(TestMesh::Context(agent).get(), get, &got);
  ASSERT_TRUE(s.ok()) << s.error_message();
  get.set_project_id(ids[1]);
  EXPECT_EQ(stub->GetProject(TestMesh::Context(agent).get(), get, &got).error_code(),
            grpc::StatusCode::NOT_FOUND);
  projects::v1::ListProjectsResponse listed;
  ASSERT_TRUE(stub->ListProjects(TestMesh::Context(agent).get(), {}, &listed).ok());
  ASSERT_EQ(listed.projects_size(), 1);
  EXPECT_EQ(listed.projects(0).id(), ids[0]);
  ASSERT_TRUE(stub->ListProjects(TestMesh::Context(alice).get(), {}, &listed).ok());
  EXPECT_EQ(listed.projects_size(), 2);
  projects_side->Shutdown();
}

}  // namespace
}  // namespace orchestrator::admin
