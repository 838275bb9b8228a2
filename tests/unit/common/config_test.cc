#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/config/mesh_config.h"

namespace orchestrator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::vector<std::string> kKnown = {"admin",  "projects",   "jobs",        "sessions",
                                         "agents", "scaffolder", "engineering", "deploy",
                                         "infra",  "scheduler"};

MeshConfig Valid() {
  MeshConfig c;
  c.services = kKnown;
  c.secrets_key_file = "/run/secrets/key";
  c.mesh_credential_file = "/run/secrets/mesh";
  return c;
}

TEST(ParseServices, AllMeansEveryComponent) {
  std::vector<std::string> out;
  ASSERT_TRUE(ParseServices("all", kKnown, &out).ok());
  EXPECT_EQ(out, kKnown);
  EXPECT_EQ(out.size(), 10u);
}

TEST(ParseServices, ListKeepsOrderAndDropsRepeats) {
  std::vector<std::string> out;
  ASSERT_TRUE(ParseServices("deploy, jobs,deploy", kKnown, &out).ok());
  EXPECT_THAT(out, ElementsAre("deploy", "jobs"));
}

TEST(ParseServices, UnknownComponentIsNamed) {
  std::vector<std::string> out;
  absl::Status s = ParseServices("projects,deploy2", kKnown, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'deploy2'"));
  EXPECT_THAT(s.message(), HasSubstr("--services"));
  EXPECT_EQ(ParseServices(" , ", kKnown, &out).code(), absl::StatusCode::kInvalidArgument);
}

TEST(MeshConfigValidate, DefaultsWithAKeyAreValid) { EXPECT_TRUE(Valid().Validate(kKnown).ok()); }

TEST(MeshConfigValidate, BadListenAddressNamesTheFlag) {
  for (const char* bad : {"localhost", ":", "host:99999", "host:abc", "unix:"}) {
    MeshConfig c = Valid();
    c.listen = bad;
    absl::Status s = c.Validate(kKnown);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("--listen")) << bad;
  }
  MeshConfig c = Valid();
  c.listen = "unix:/run/orchestrator.sock";
  EXPECT_TRUE(c.Validate(kKnown).ok());
}

TEST(MeshConfigValidate, WithoutAdminHostedTheAdminAddressIsRequired) {
  MeshConfig c = Valid();
  c.services = {"projects"};
  EXPECT_THAT(c.Validate(kKnown).message(), HasSubstr("--admin_addr"));
  c.remote_addrs["admin"] = "admin:50051";
  EXPECT_TRUE(c.Validate(kKnown).ok());
  c.remote_addrs["admin"] = "admin";
  EXPECT_THAT(c.Validate(kKnown).message(), HasSubstr("--admin_addr"));
}

TEST(MeshConfigValidate, ASplitProcessNeedsTheMeshCredential) {
  MeshConfig c = Valid();
  c.mesh_credential_file.clear();
  EXPECT_TRUE(c.Validate(kKnown).ok()) << "one process hosting everything makes its own";
  c.services = {"admin", "projects"};
  EXPECT_THAT(c.Validate(kKnown).message(), HasSubstr("--mesh_credential_file"));
}

TEST(MeshConfigValidate, ProjectsNeedTheSecretsKey) {
  MeshConfig c = Valid();
  c.secrets_key_file.clear();
  EXPECT_THAT(c.Validate(kKnown).message(), HasSubstr("--secrets_key_file"));
  c.services = {"admin", "jobs"};
  EXPECT_TRUE(c.Validate(kKnown).ok());
}

TEST(MeshConfigValidate, NumbersOutOfRangeAreNamed) {
  MeshConfig c = Valid();
  c.executor_threads = 0;
  EXPECT_THAT(c.Validate(kKnown).message(), HasSubstr("--executor_threads"));
  c = Valid();
  c.db_pool_size = 1000;
  EXPECT_THAT(c.Validate(kKnown).message(), HasSubstr("--db_pool_size"));
  c = Valid();
  c.drain_deadline = std::chrono::milliseconds(0);
  EXPECT_THAT(c.Validate(kKnown).message(), HasSubstr("--drain_deadline"));
}

TEST(ParseJobOwnerLimits, KindsWithPositiveLimits) {
  std::map<std::string, int> out;
  ASSERT_TRUE(ParseJobOwnerLimits("deploy=3, provision=1", &out).ok());
  EXPECT_EQ(out, (std::map<std::string, int>{{"deploy", 3}, {"provision", 1}}));
  ASSERT_TRUE(ParseJobOwnerLimits("", &out).ok());
  EXPECT_TRUE(out.empty());
  for (const char* bad : {"deploy", "deploy=0", "deploy=x", "=3", "deploy=3=4"}) {
    absl::Status s = ParseJobOwnerLimits(bad, &out);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("--job_owner_limits")) << bad;
  }
}

}  // namespace
}  // namespace orchestrator
