#include "services/admin/domain/user_directory.h"

#include <google/protobuf/util/time_util.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/auth/mesh_identity.h"
#include "services/common/crypto/secret_box.h"
#include "tests/mocks/mock_user_store.h"

namespace orchestrator::admin {
namespace {

using google::protobuf::util::TimeUtil;
using ::testing::_;
using ::testing::HasSubstr;
using ::testing::Return;
using ::testing::StrictMock;

class UserDirectoryTest : public ::testing::Test {
 protected:
  UserDirectoryTest()
      : store_(std::make_shared<StrictMock<MockUserStore>>()),
        directory_(store_, [this] { return now_; }) {}

  TokenGrant Grant(v1::Role role = v1::ROLE_USER) {
    TokenGrant g;
    g.user.set_id("u1");
    g.user.set_name("alice");
    g.user.set_role(role);
    g.token.set_id("tok_1");
    g.token.set_user_id("u1");
    g.token.set_kind(v1::TOKEN_KIND_USER);
    return g;
  }

  std::shared_ptr<StrictMock<MockUserStore>> store_;
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  UserDirectory directory_;
};

TEST_F(UserDirectoryTest, AValidTokenBecomesItsUsersPrincipal) {
  const std::string token = "orc_valid";
  EXPECT_CALL(*store_, FindTokenByHash(absl::string_view(HashToken(token))))
      .WillOnce(Return(Grant()));
  auto p = directory_.Verify(token);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->user_id, "u1");
  EXPECT_FALSE(p->admin);
  EXPECT_TRUE(p->Allows("project.create"));
  EXPECT_FALSE(p->Allows("admin.user.create"));
}

TEST_F(UserDirectoryTest, ExpiredRevokedDisabledAndUnknownTokensAreRefused) {
  TokenGrant expired = Grant();
  *expired.token.mutable_expire_time() = TimeUtil::SecondsToTimestamp(1'800'000'000);
  TokenGrant revoked = Grant();
  *revoked.token.mutable_revoke_time() = TimeUtil::SecondsToTimestamp(1);
  TokenGrant disabled = Grant();
  disabled.user.set_disabled(true);
  EXPECT_CALL(*store_, FindTokenByHash(_))
      .WillOnce(Return(expired))
      .WillOnce(Return(revoked))
      .WillOnce(Return(disabled))
      .WillOnce(Return(absl::NotFoundError("no")));
  EXPECT_THAT(directory_.Verify("orc_x").status().message(), HasSubstr("expired"));
  EXPECT_THAT(directory_.Verify("orc_x").status().message(), HasSubstr("revoked"));
  EXPECT_THAT(directory_.Verify("orc_x").status().message(), HasSubstr("disabled"));
  EXPECT_EQ(directory_.Verify("orc_x").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(directory_.Verify("not-ours").status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(UserDirectoryTest, ATokenExpiresExactlyAtItsExpiry) {
  TokenGrant g = Grant();
  *g.token.mutable_expire_time() = TimeUtil::SecondsToTimestamp(1'800'000'060);
  EXPECT_CALL(*store_, FindTokenByHash(_)).WillRepeatedly(Return(g));
  EXPECT_TRUE(directory_.Verify("orc_x").ok());
  now_ += absl::Seconds(59);
  EXPECT_TRUE(directory_.Verify("orc_x").ok());
  now_ += absl::Seconds(1);
  EXPECT_EQ(directory_.Verify("orc_x").status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(UserDirectoryTest, ATokenNeverGrantsMoreThanItsCreatorHolds) {
  Principal limited{.user_id = "u1",
                    .role_grants = RoleGrants(v1::ROLE_USER),
                    .token_grants = {"admin.token.create", "project.get"}};
  v1::CreateTokenRequest req;
  req.set_user_id("u1");
  req.add_permissions("project.*");
  auto refused = directory_.CreateToken(limited, req);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(refused.status().message(), HasSubstr("'project.*'"));
}

TEST_F(UserDirectoryTest, UsersCannotCreateTokensForOthers) {
  Principal alice{.user_id = "u1", .role_grants = RoleGrants(v1::ROLE_USER)};
  v1::CreateTokenRequest req;
  req.set_user_id("u2");
  EXPECT_EQ(directory_.CreateToken(alice, req).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(UserDirectoryTest, MalformedGrantsNameTheField) {
  Principal root{.user_id = "root", .admin = true, .role_grants = {"*"}};
  v1::CreateTokenRequest req;
  req.set_user_id("u1");
  req.add_permissions("deploy.*,project.get");
  auto refused = directory_.CreateToken(root, req);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("permissions"));
}

TEST_F(UserDirectoryTest, AWorkersTokenIsLimitedToItsProjectAndItsPrincipalSaysSo) {
  v1::User alice = Grant().user;
  EXPECT_CALL(*store_, GetUser(absl::string_view("u1"))).WillRepeatedly(Return(alice));
  v1::Token stored;
  EXPECT_CALL(*store_, InsertToken(_, _, _))
      .WillOnce([&](const v1::Token& t, absl::string_view, absl::string_view) {
        stored = t;
        return t;
      });
  v1::MintWorkerTokenRequest mint;
  mint.set_user_id("u1");
  mint.set_worker_id("wrk_1");
  mint.set_project_id("prj_a");
  mint.add_permissions("project.get");
  auto minted = directory_.MintWorkerToken(MeshPrincipal(), mint);
  ASSERT_TRUE(minted.ok()) << minted.status();
  EXPECT_EQ(stored.project_id(), "prj_a");
  EXPECT_EQ(minted->token().project_id(), "prj_a");

  TokenGrant grant = Grant();
  grant.token = stored;
  EXPECT_CALL(*store_, FindTokenByHash(absl::string_view(HashToken(minted->value()))))
      .WillOnce(Return(grant));
  auto agent = directory_.Verify(minted->value());
  ASSERT_TRUE(agent.ok()) << agent.status();
  EXPECT_EQ(agent->kind, PrincipalKind::kAgent);
  EXPECT_EQ(agent->project_id, "prj_a");
  EXPECT_EQ(agent->worker_id, "wrk_1");
}

TEST_F(UserDirectoryTest, ATokenDerivedFromAProjectLimitedOneKeepsTheLimit) {
  // No such creator exists today (only agent tokens are limited, and they
  // create nothing); should one ever, its tokens reach no more projects.
  v1::User alice = Grant().user;
  EXPECT_CALL(*store_, GetUser(absl::string_view("u1"))).WillRepeatedly(Return(alice));
  v1::Token parent = Grant().token;
  parent.set_project_id("prj_a");
  EXPECT_CALL(*store_, GetToken(absl::string_view("tok_1"))).WillRepeatedly(Return(parent));
  std::vector<v1::Token> stored;
  EXPECT_CALL(*store_, InsertToken(_, _, _))
      .WillRepeatedly([&](const v1::Token& t, absl::string_view, absl::string_view) {
        stored.push_back(t);
        return t;
      });
  Principal limited{.user_id = "u1",
                    .token_id = "tok_1",
                    .role_grants = RoleGrants(v1::ROLE_USER),
                    .project_id = "prj_a"};
  v1::CreateTokenRequest create;
  create.set_user_id("u1");
  ASSERT_TRUE(directory_.CreateToken(limited, create).ok());

  v1::MintWorkerTokenRequest mint;
  mint.set_user_id("u1");
  mint.set_parent_token_id("tok_1");
  mint.set_worker_id("wrk_1");
  ASSERT_TRUE(directory_.MintWorkerToken(MeshPrincipal(), mint).ok());
  mint.set_project_id("prj_b");
  auto elsewhere = directory_.MintWorkerToken(MeshPrincipal(), mint);
  EXPECT_EQ(elsewhere.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(elsewhere.status().message(), HasSubstr("project_id"));

  ASSERT_EQ(stored.size(), 2u);
  for (const auto& t : stored) EXPECT_EQ(t.project_id(), "prj_a");
}

TEST_F(UserDirectoryTest, BootstrapOnlyOnAnEmptyInstall) {
  EXPECT_CALL(*store_, CountUsers()).WillOnce(Return(1));
  auto none = directory_.Bootstrap([](const std::string&) {
    ADD_FAILURE() << "delivered a token on an install that has users";
    return absl::OkStatus();
  });
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(*none);

  std::string delivered, stored_hash;
  EXPECT_CALL(*store_, CountUsers()).WillOnce(Return(0));
  EXPECT_CALL(*store_, InsertUser(_, _)).WillOnce([](const v1::User& u, absl::string_view) {
    EXPECT_EQ(u.role(), v1::ROLE_ADMIN);
    return u;
  });
  EXPECT_CALL(*store_, InsertToken(_, _, _))
      .WillOnce([&](const v1::Token& t, absl::string_view hash, absl::string_view) {
        EXPECT_FALSE(delivered.empty()) << "stored before it was delivered";
        stored_hash = std::string(hash);
        return t;
      });
  auto created = directory_.Bootstrap([&](const std::string& token) {
    delivered = token;
    return absl::OkStatus();
  });
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE(*created);
  EXPECT_THAT(delivered, HasSubstr("orc_"));
  EXPECT_EQ(stored_hash, HashToken(delivered));  // only the hash is stored
}

TEST_F(UserDirectoryTest, ATokenThatCannotBeDeliveredIsNeverCreated) {
  EXPECT_CALL(*store_, CountUsers()).WillOnce(Return(0));
  auto failed = directory_.Bootstrap(
      [](const std::string&) { return absl::FailedPreconditionError("cannot write token file"); });
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kFailedPrecondition);
  // StrictMock: no InsertUser / InsertToken happened.
}

}  // namespace
}  // namespace orchestrator::admin
