// LocalGitHost: bare repositories under a root, named by project id.
#include "services/common/git/local_git_host.h"

#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/git/local_repository.h"
#include "tests/support/run_git.h"
#include "tests/support/temp_dir.h"

namespace orchestrator::git {
namespace {

using ::orchestrator::testing::RunGit;
using ::orchestrator::testing::TempDir;
using ::testing::HasSubstr;

class LocalGitHostTest : public ::testing::Test {
 protected:
  TempDir tmp_;
  LocalGitHost host_{tmp_.Path("repos"), "http://127.0.0.1:50080/", "mesh-token"};
};

TEST_F(LocalGitHostTest, CreateMakesABareRepositoryThatFindSees) {
  EXPECT_EQ(host_.Kind(), "local");
  auto before = host_.Find("prj_123");
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_FALSE(before->has_value());

  auto made = host_.Create({.name = "prj_123", .project_id = "prj_123", .description = "a shop"});
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(made->clone_url, "http://127.0.0.1:50080/git/prj_123.git");
  EXPECT_EQ(made->full_name, "prj_123");
  EXPECT_EQ(host_.PathOf("prj_123"), tmp_.Path("repos/prj_123.git"));
  EXPECT_EQ(RunGit({"rev-parse", "--is-bare-repository"}, host_.PathOf("prj_123")).out, "true\n");

  auto found = host_.Find("prj_123");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->clone_url, made->clone_url);
  // Nothing half-made is left next to it.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp_.Path("repos"))) {
    EXPECT_EQ(e.path().filename(), "prj_123.git");
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST_F(LocalGitHostTest, ATakenNameIsAlreadyExists) {
  ASSERT_TRUE(host_.Create({.name = "p1", .project_id = "p1", .description = ""}).ok());
  EXPECT_EQ(host_.Create({.name = "p1", .project_id = "p1", .description = ""}).status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST_F(LocalGitHostTest, NamesThatAreNotProjectIdsAreInvalid) {
  const std::vector<std::string> invalid = {"",    "../etc", "a.b",    "a/b", std::string(129, 'a'),
                                            "a b", "x.git",  "%2e%2e", "a\nb"};
  for (const std::string& name : invalid) {
    auto made = host_.Create({.name = name, .project_id = "p", .description = ""});
    EXPECT_EQ(made.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(made.status().message(), HasSubstr("repository_name")) << name;
    EXPECT_EQ(host_.Find(name).status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
  EXPECT_TRUE(
      host_.Create({.name = std::string(128, 'a'), .project_id = "p", .description = ""}).ok());
  EXPECT_TRUE(host_.Create({.name = "A-z_0-9", .project_id = "p", .description = ""}).ok());
}

TEST_F(LocalGitHostTest, PushCredentialsAreTheMeshsBearerToken) {
  auto made = host_.Create({.name = "p2", .project_id = "p2", .description = ""});
  ASSERT_TRUE(made.ok());
  auto credentials = host_.PushCredentials(*made);
  ASSERT_TRUE(credentials.ok());
  EXPECT_EQ(credentials->http_header, "Authorization: Bearer mesh-token");
}

TEST_F(LocalGitHostTest, PushAndHeadWorkOnTheBareRepositoryItServes) {
  auto made = host_.Create({.name = "p3", .project_id = "p3", .description = ""});
  ASSERT_TRUE(made.ok());
  EXPECT_EQ(host_.Head(*made, "main").status().code(), absl::StatusCode::kNotFound);
  tmp_.Write("work/README.md", "hi\n");
  auto id = CommitAll(tmp_.Path("work"), "main", "first",
                      {"Scaffolder", "s@orchestrator.local", absl::FromUnixSeconds(1)});
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(host_.Push(*made, tmp_.Path("work"), "main").ok());
  EXPECT_EQ(host_.Head(*made, "main").value_or(""), *id);
  EXPECT_EQ(RunGit({"rev-parse", "main"}, host_.PathOf("p3")).out, *id + "\n");

  // A repository the host does not have, or a name that is no project id.
  Repository ghost = *made;
  ghost.full_name = "ghost";
  EXPECT_EQ(host_.Push(ghost, tmp_.Path("work"), "main").code(), absl::StatusCode::kNotFound);
  ghost.full_name = "../p3";
  EXPECT_EQ(host_.Head(ghost, "main").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace orchestrator::git
