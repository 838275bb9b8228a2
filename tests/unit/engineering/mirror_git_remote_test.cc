#include "services/engineering/adapters/mirror_git_remote.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace orchestrator::engineering {
namespace {

// With GitHub, the operator's token may write far more than the mesh's own
// repositories: nothing is pushed to a repository outside --github_owner,
// whatever a project names.
TEST(MirrorGitRemoteTest, NothingIsPushedToARepositoryOutsideTheMeshsGitHubOwner) {
  MirrorGitRemote::Options options;
  options.mirrors_dir = ::testing::TempDir();
  options.mesh = std::make_shared<const MeshCredential>(MeshCredential::Random());
  options.github.api_url = "https://api.github.com";
  options.github.owner = "acme";
  options.github.token = "ghp_test";
  auto remote = MirrorGitRemote::Make(options);
  ASSERT_TRUE(remote.ok()) << remote.status();
  Landing landing;
  landing.project_id = "prj_1";
  landing.repository_url = "https://github.com/someone-else/their-repo.git";
  landing.commit_sha = std::string(40, 'a');
  landing.run_branch = "orchestrator/eng_1";
  landing.default_branch = "main";
  absl::Status landed = (*remote)->Land(landing);
  EXPECT_EQ(landed.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(landed.message(), ::testing::HasSubstr("--github_owner acme"));
  auto pr =
      (*remote)->OpenPullRequest(landing.repository_url, landing.run_branch, "main", "t", "b");
  EXPECT_EQ(pr.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace orchestrator::engineering
