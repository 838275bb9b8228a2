// Mesh identity: what only the mesh may do (mesh-only RPCs, acting for a
// user) is refused to every user's and agent's token, and works with the
// mesh credential. Hosts just the two components involved.
#include <grpcpp/client_context.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/admin/v1/admin.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "tests/support/test_mesh.h"

namespace orchestrator {
namespace {

using ::testing::HasSubstr;
using testing::TestMesh;

class MeshIdentityTest : public ::testing::Test {
 protected:
  MeshIdentityTest()
      : mesh_("admin,projects"),
        admin_(admin::v1::AdminService::NewStub(mesh_.channel())),
        projects_(projects::v1::ProjectService::NewStub(mesh_.channel())),
        credential_(mesh_.mesh_credential()) {}

  // A context as the mesh, acting for `act_for` when set.
  std::unique_ptr<grpc::ClientContext> AsMesh(const std::string& act_for = "") {
    auto ctx = TestMesh::Context(credential_);
    if (!act_for.empty()) ctx->AddMetadata("x-orchestrator-act-for", act_for);
    return ctx;
  }

  std::string AgentTokenOf(const std::string& user_token) {
    admin::v1::GetIdentityResponse me;
    EXPECT_TRUE(admin_->GetIdentity(TestMesh::Context(user_token).get(), {}, &me).ok());
    admin::v1::CreateTokenRequest req;
    req.set_user_id(me.user().id());
    req.set_kind(admin::v1::TOKEN_KIND_AGENT);
    admin::v1::CreateTokenResponse created;
    EXPECT_TRUE(admin_->CreateToken(TestMesh::Context(user_token).get(), req, &created).ok());
    return created.value();
  }

  std::string CreateProject(const std::string& token, const std::string& name) {
    projects::v1::CreateProjectRequest req;
    req.mutable_project()->set_name(name);
    projects::v1::CreateProjectResponse resp;
    grpc::Status s = projects_->CreateProject(TestMesh::Context(token).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.project().id();
  }

  TestMesh mesh_;
  std::unique_ptr<admin::v1::AdminService::Stub> admin_;
  std::unique_ptr<projects::v1::ProjectService::Stub> projects_;
  std::string credential_;
};

TEST_F(MeshIdentityTest, MeshOnlyRpcsRefuseEveryUsersAndAgentsToken) {
  auto [alice_id, alice] = mesh_.NewUser("alice");
  const std::string agent = AgentTokenOf(alice);
  const std::string project = CreateProject(alice, "shop");
  // The bootstrap admin holds "*", which would match "mesh.*": still refused.
  for (const std::string& token : {mesh_.admin_token(), alice, agent}) {
    admin::v1::MintWorkerTokenRequest mint;
    mint.set_user_id(alice_id);
    mint.set_worker_id("wrk_1");
    admin::v1::MintWorkerTokenResponse minted;
    grpc::Status s = admin_->MintWorkerToken(TestMesh::Context(token).get(), mint, &minted);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("only with the mesh credential"));
    EXPECT_TRUE(minted.value().empty());

    admin::v1::RevokeWorkerTokenRequest revoke;
    revoke.set_token_id("tok_1");
    admin::v1::RevokeWorkerTokenResponse revoked;
    EXPECT_EQ(
        admin_->RevokeWorkerToken(TestMesh::Context(token).get(), revoke, &revoked).error_code(),
        grpc::StatusCode::PERMISSION_DENIED);

    projects::v1::RevealSecretsRequest reveal;
    reveal.set_project_id(project);
    projects::v1::RevealSecretsResponse values;
    EXPECT_EQ(
        projects_->RevealSecrets(TestMesh::Context(token).get(), reveal, &values).error_code(),
        grpc::StatusCode::PERMISSION_DENIED);
  }
}

TEST_F(MeshIdentityTest, OnlyTheMeshMayActForAnotherUser) {
  auto [alice_id, alice] = mesh_.NewUser("alice");
  auto [bob_id, bob] = mesh_.NewUser("bob");
  const std::string alices = CreateProject(alice, "shop");
  for (const std::string& token : {bob, AgentTokenOf(bob), mesh_.admin_token()}) {
    auto ctx = TestMesh::Context(token);
    ctx->AddMetadata("x-orchestrator-act-for", alice_id);
    projects::v1::GetProjectRequest get;
    get.set_project_id(alices);
    projects::v1::GetProjectResponse got;
    grpc::Status s = projects_->GetProject(ctx.get(), get, &got);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("only the mesh may act for another user"));
    EXPECT_TRUE(got.project().id().empty());
  }
  // The mesh acting for bob sees what bob sees: not alice's project.
  projects::v1::GetProjectRequest get;
  get.set_project_id(alices);
  projects::v1::GetProjectResponse got;
  EXPECT_EQ(projects_->GetProject(AsMesh(bob_id).get(), get, &got).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(projects_->GetProject(AsMesh(alice_id).get(), get, &got).ok());
  EXPECT_EQ(got.project().owner_id(), alice_id);
}

TEST_F(MeshIdentityTest, NoTokenIsTheMeshNotEvenOneAnAdminAsksToBe) {
  admin::v1::GetIdentityResponse me;
  ASSERT_TRUE(admin_->GetIdentity(TestMesh::Context(mesh_.admin_token()).get(), {}, &me).ok());
  admin::v1::CreateTokenRequest req;
  req.set_user_id(me.user().id());
  req.set_kind(admin::v1::TOKEN_KIND_MESH);
  admin::v1::CreateTokenResponse created;
  grpc::Status s = admin_->CreateToken(TestMesh::Context(mesh_.admin_token()).get(), req, &created);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("--mesh_credential_file"));
  EXPECT_TRUE(created.value().empty());
}

TEST_F(MeshIdentityTest, AWrongMeshCredentialIsJustAnInvalidToken) {
  auto ctx = TestMesh::Context(credential_ + "x");
  admin::v1::MintWorkerTokenRequest mint;
  admin::v1::MintWorkerTokenResponse minted;
  EXPECT_EQ(admin_->MintWorkerToken(ctx.get(), mint, &minted).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(MeshIdentityTest, TheMeshRevealsOnlyTheActedForUsersSecrets) {
  auto [alice_id, alice] = mesh_.NewUser("alice");
  auto [bob_id, bob] = mesh_.NewUser("bob");
  const std::string project = CreateProject(alice, "shop");
  projects::v1::SetSecretRequest set;
  set.set_project_id(project);
  set.set_name("STRIPE_KEY");
  set.set_value("sk_live_1");
  projects::v1::SetSecretResponse stored;
  ASSERT_TRUE(projects_->SetSecret(TestMesh::Context(alice).get(), set, &stored).ok());

  projects::v1::RevealSecretsRequest reveal;
  reveal.set_project_id(project);
  reveal.add_names("STRIPE_KEY");
  projects::v1::RevealSecretsResponse values;
  ASSERT_TRUE(projects_->RevealSecrets(AsMesh(alice_id).get(), reveal, &values).ok());
  EXPECT_EQ(values.values().at("STRIPE_KEY"), "sk_live_1");
  EXPECT_EQ(projects_->RevealSecrets(AsMesh(bob_id).get(), reveal, &values).error_code(),
            grpc::StatusCode::NOT_FOUND);
  reveal.set_names(0, "MISSING");
  grpc::Status s = projects_->RevealSecrets(AsMesh(alice_id).get(), reveal, &values);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("names[0]"));
}

TEST_F(MeshIdentityTest, AMintedWorkerTokenHoldsNoMoreThanItsParentAndDiesWithIt) {
  auto [alice_id, alice] = mesh_.NewUser("alice", {"project.get", "project.list"});
  admin::v1::GetIdentityResponse me;
  ASSERT_TRUE(admin_->GetIdentity(TestMesh::Context(alice).get(), {}, &me).ok());

  admin::v1::MintWorkerTokenRequest mint;
  mint.set_user_id(alice_id);
  mint.set_parent_token_id(me.token().id());
  mint.set_worker_id("wrk_0123");
  mint.add_permissions("project.create");  // alice's token does not hold it
  admin::v1::MintWorkerTokenResponse minted;
  EXPECT_EQ(admin_->MintWorkerToken(AsMesh().get(), mint, &minted).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  mint.set_permissions(0, "project.list");
  ASSERT_TRUE(admin_->MintWorkerToken(AsMesh().get(), mint, &minted).ok());
  EXPECT_EQ(minted.token().kind(), admin::v1::TOKEN_KIND_AGENT);
  EXPECT_EQ(minted.token().worker_id(), "wrk_0123");
  EXPECT_EQ(minted.token().parent_token_id(), me.token().id());
  admin::v1::GetIdentityResponse worker;
  ASSERT_TRUE(admin_->GetIdentity(TestMesh::Context(minted.value()).get(), {}, &worker).ok());
  EXPECT_EQ(worker.user().id(), alice_id);
  EXPECT_EQ(worker.token().worker_id(), "wrk_0123");

  // Revoking alice's token revokes the worker's.
  admin::v1::RevokeTokenRequest revoke;
  revoke.set_token_id(me.token().id());
  admin::v1::RevokeTokenResponse revoked;
  ASSERT_TRUE(
      admin_->RevokeToken(TestMesh::Context(mesh_.admin_token()).get(), revoke, &revoked).ok());
  EXPECT_EQ(admin_->GetIdentity(TestMesh::Context(minted.value()).get(), {}, &worker).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(MeshIdentityTest, TheMeshRevokesAWorkersToken) {
  auto [alice_id, alice] = mesh_.NewUser("alice");
  admin::v1::MintWorkerTokenRequest mint;
  mint.set_user_id(alice_id);  // no parent: the mesh started the worker for alice
  mint.set_worker_id("wrk_0456");
  mint.add_permissions("project.list");
  admin::v1::MintWorkerTokenResponse minted;
  ASSERT_TRUE(admin_->MintWorkerToken(AsMesh().get(), mint, &minted).ok());
  admin::v1::RevokeWorkerTokenRequest revoke;
  revoke.set_token_id(minted.token().id());
  admin::v1::RevokeWorkerTokenResponse revoked;
  ASSERT_TRUE(admin_->RevokeWorkerToken(AsMesh().get(), revoke, &revoked).ok());
  admin::v1::GetIdentityResponse worker;
  EXPECT_EQ(admin_->GetIdentity(TestMesh::Context(minted.value()).get(), {}, &worker).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

}  // namespace
}  // namespace orchestrator
