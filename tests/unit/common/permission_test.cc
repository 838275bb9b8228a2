#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/auth/principal.h"

namespace orchestrator {
namespace {

TEST(PermissionMatches, ExactWildcardAndEverything) {
  EXPECT_TRUE(PermissionMatches("project.get", "project.get"));
  EXPECT_FALSE(PermissionMatches("project.get", "project.get_all"));
  EXPECT_TRUE(PermissionMatches("deploy.*", "deploy.trigger"));
  EXPECT_TRUE(PermissionMatches("project.*", "project.secret.set"));
  EXPECT_TRUE(PermissionMatches("project.secret.*", "project.secret.set"));
  EXPECT_FALSE(PermissionMatches("project.secret.*", "project.get"));
  EXPECT_FALSE(PermissionMatches("deploy.*", "deployment.trigger"));
  EXPECT_FALSE(PermissionMatches("deploy.*", "deploy"));
  EXPECT_TRUE(PermissionMatches("*", "admin.user.create"));
}

TEST(PermissionPattern, WellFormedOnly) {
  for (const char* ok : {"*", "project.get", "deploy.*", "project.secret.*", "a_b.c1"}) {
    EXPECT_TRUE(IsValidPermissionPattern(ok)) << ok;
  }
  for (const char* bad : {"", ".", "project.", ".get", "Project.get", "project..get", "*.get",
                          "project.*.get", "project get", "project.get,deploy.*", "1x.get"}) {
    EXPECT_FALSE(IsValidPermissionPattern(bad)) << bad;
  }
}

TEST(Principal, NeedsTheRoleAndTheTokenToAgree) {
  Principal agent;
  agent.role_grants = {"project.*", "deploy.*"};
  agent.token_grants = {"deploy.*", "project.get", "admin.user.create"};
  EXPECT_TRUE(agent.Allows("deploy.trigger"));
  EXPECT_TRUE(agent.Allows("project.get"));
  EXPECT_FALSE(agent.Allows("project.create"));     // the token does not grant it
  EXPECT_FALSE(agent.Allows("admin.user.create"));  // the role does not grant it

  Principal user;
  user.role_grants = {"project.*"};
  EXPECT_TRUE(user.Allows("project.create"));  // no token limit
  EXPECT_FALSE(user.Allows("job.get"));
}

TEST(OwnerScope, AdminsSeeEveryoneOthersOnlyThemselves) {
  Principal user{.user_id = "u1"};
  Principal admin{.user_id = "root", .admin = true};
  EXPECT_TRUE(CanSeeOwner(user, "u1"));
  EXPECT_FALSE(CanSeeOwner(user, "u2"));
  EXPECT_TRUE(CanSeeOwner(admin, "u2"));
  EXPECT_EQ(*OwnerFilter(user, ""), "u1");
  EXPECT_EQ(*OwnerFilter(user, "u1"), "u1");
  EXPECT_EQ(*OwnerFilter(admin, "u2"), "u2");
  EXPECT_EQ(*OwnerFilter(admin, ""), "");
}

TEST(OwnerScope, NonAdminNamingAnotherOwnerIsRefusedNotServedTheirOwnList) {
  Principal user{.user_id = "u1"};
  // The same answer whether or not the other owner exists: nothing leaks.
  for (const char* other : {"u2", "usr_nobody"}) {
    auto filter = OwnerFilter(user, other);
    EXPECT_EQ(filter.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(filter.status().message(), ::testing::HasSubstr("owner_id"));
  }
}

}  // namespace
}  // namespace orchestrator
