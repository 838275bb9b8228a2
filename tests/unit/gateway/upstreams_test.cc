// A split mesh: each component's calls go to its own address, the rest to
// the default one; a typo in the flag is refused, naming the components.
#include "gateway/api/upstreams.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace orchestrator::gateway {
namespace {

using ::testing::HasSubstr;

TEST(UpstreamsTest, ComponentsGoWhereTheFlagSays) {
  auto u = Upstreams::Create("mesh:50051", "projects=projects-svc:50051, jobs=jobs-svc:50051");
  ASSERT_TRUE(u.ok()) << u.status();
  const auto projects = u->For("orchestrator.projects.v1.ProjectService");
  const auto jobs = u->For("orchestrator.jobs.v1.JobService");
  const auto admin = u->For("orchestrator.admin.v1.AdminService");
  EXPECT_NE(projects, jobs);
  EXPECT_NE(projects, admin);
  EXPECT_EQ(admin, u->For("orchestrator.sessions.v1.SessionService"));  // both the default
  EXPECT_EQ(u->All().size(), 3u);
}

TEST(UpstreamsTest, BadFlagsAreRefused) {
  auto typo = Upstreams::Create("mesh:1", "project=x:1");
  ASSERT_FALSE(typo.ok());
  EXPECT_THAT(typo.status().message(), HasSubstr("unknown component 'project'"));
  EXPECT_THAT(typo.status().message(), HasSubstr("projects"));
  EXPECT_FALSE(Upstreams::Create("mesh:1", "projects").ok());
  EXPECT_FALSE(Upstreams::Create("mesh:1", "projects=").ok());
  EXPECT_FALSE(Upstreams::Create("", "").ok());
  auto one = Upstreams::Create("mesh:1", "");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->All().size(), 1u);
}

}  // namespace
}  // namespace orchestrator::gateway
