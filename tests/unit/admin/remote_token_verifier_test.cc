#include "services/admin/api/remote_token_verifier.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/admin/v1/admin_mock.grpc.pb.h"

namespace orchestrator::admin {
namespace {

using ::testing::_;
using ::testing::DoAll;
using ::testing::HasSubstr;
using ::testing::Return;
using ::testing::SetArgPointee;
using ::testing::StrictMock;

class RemoteTokenVerifierTest : public ::testing::Test {
 protected:
  RemoteTokenVerifierTest() {
    auto stub = std::make_unique<StrictMock<v1::MockAdminServiceStub>>();
    stub_ = stub.get();
    verifier_ = std::make_unique<RemoteTokenVerifier>(std::move(stub), std::chrono::seconds(3));
  }

  StrictMock<v1::MockAdminServiceStub>* stub_;
  std::unique_ptr<RemoteTokenVerifier> verifier_;
};

TEST_F(RemoteTokenVerifierTest, AsksAdminServiceWithTheTokenAndADeadline) {
  v1::GetIdentityResponse identity;
  identity.mutable_user()->set_id("u1");
  identity.mutable_user()->set_role(v1::ROLE_USER);
  identity.mutable_token()->set_id("tok_1");
  identity.mutable_token()->set_kind(v1::TOKEN_KIND_AGENT);
  identity.mutable_token()->add_permissions("deploy.*");
  identity.add_role_permissions("deploy.*");
  identity.add_role_permissions("project.*");
  EXPECT_CALL(*stub_, GetIdentity(_, _, _))
      .WillOnce([&](grpc::ClientContext* ctx, const v1::GetIdentityRequest&,
                    v1::GetIdentityResponse* out) {
        EXPECT_LT(ctx->deadline(), std::chrono::system_clock::now() + std::chrono::seconds(4));
        *out = identity;
        return grpc::Status::OK;
      });
  auto p = verifier_->Verify("orc_agent");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->user_id, "u1");
  EXPECT_EQ(p->kind, PrincipalKind::kAgent);
  EXPECT_TRUE(p->Allows("deploy.trigger"));
  EXPECT_FALSE(p->Allows("project.create"));  // the agent token is limited to deploy.*
}

TEST_F(RemoteTokenVerifierTest, AWorkersProjectLimitComesThrough) {
  v1::GetIdentityResponse identity;
  identity.mutable_user()->set_id("u1");
  identity.mutable_user()->set_role(v1::ROLE_USER);
  identity.mutable_token()->set_id("tok_1");
  identity.mutable_token()->set_kind(v1::TOKEN_KIND_AGENT);
  identity.mutable_token()->set_worker_id("wrk_1");
  identity.mutable_token()->set_project_id("prj_a");
  identity.add_role_permissions("project.*");
  EXPECT_CALL(*stub_, GetIdentity(_, _, _))
      .WillOnce(DoAll(SetArgPointee<2>(identity), Return(grpc::Status::OK)));
  auto p = verifier_->Verify("orc_agent");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->project_id, "prj_a");
  EXPECT_EQ(p->worker_id, "wrk_1");
}

TEST_F(RemoteTokenVerifierTest, RefusalsPassThroughOtherFailuresAreUnavailable) {
  EXPECT_CALL(*stub_, GetIdentity(_, _, _))
      .WillOnce(Return(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "token revoked")))
      .WillOnce(Return(grpc::Status(grpc::StatusCode::INTERNAL, "boom")));
  auto revoked = verifier_->Verify("orc_x");
  EXPECT_EQ(revoked.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(revoked.status().message(), HasSubstr("revoked"));
  auto broken = verifier_->Verify("orc_x");
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(broken.status().message(), HasSubstr("AdminService"));
}

}  // namespace
}  // namespace orchestrator::admin
