// Which credentials the mesh gives git for a repository URL: its own bearer
// for the local git host on loopback, the GitHub token for its GitHub's
// repositories, and nothing for anyone else's.
#include "services/common/git/mesh_git_credentials.h"

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace orchestrator::git {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

MeshGitAccess Access() {
  MeshGitAccess access;
  access.mesh_token = "mesh-secret-0123456789abcdef0123456789";
  access.github_api_url = "https://api.github.com";
  access.github_token = "ghp_secret";
  return access;
}

TEST(MeshGitCredentials, TheLocalGitHostOnLoopbackGetsTheMeshBearer) {
  for (const char* url :
       {"http://127.0.0.1:50080/git/prj_1.git", "http://localhost:8080/git/prj_1.git",
        "http://[::1]:50080/git/prj_1.git", "http://127.0.0.2/git/prj_1.git",
        "https://127.0.0.1:8443/git/prj_1.git"}) {
    auto credentials = MeshCredentialsFor(Access(), url);
    ASSERT_TRUE(credentials.ok()) << url << ": " << credentials.status();
    EXPECT_EQ(credentials->http_header,
              "Authorization: Bearer mesh-secret-0123456789abcdef0123456789")
        << url;
  }
}

TEST(MeshGitCredentials, TheConfiguredGitHubGetsItsToken) {
  auto credentials = MeshCredentialsFor(Access(), "https://github.com/acme/shop.git");
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_EQ(credentials->http_header,
            "Authorization: Basic " + absl::Base64Escape("x-access-token:ghp_secret"));
  MeshGitAccess enterprise = Access();
  enterprise.github_api_url = "https://ghe.example.com/api/v3";
  EXPECT_TRUE(MeshCredentialsFor(enterprise, "https://ghe.example.com/acme/shop.git").ok());
  EXPECT_FALSE(MeshCredentialsFor(enterprise, "https://github.com/acme/shop.git").ok());
}

TEST(MeshGitCredentials, AnyOtherRepositoryGetsNothingOfTheMesh) {
  MeshGitAccess no_github = Access();
  no_github.github_api_url.clear();
  no_github.github_token.clear();
  for (const auto& [access, url] : std::vector<std::pair<MeshGitAccess, std::string>>{
           {Access(), "https://gitlab.com/acme/shop.git"},
           {Access(), "http://github.com/acme/shop.git"},
           {Access(), "https://github.com.evil.example/acme/shop.git"},
           {Access(), "https://github.com:8443/acme/shop.git"},
           {Access(), "http://10.0.0.5:50080/git/prj_1.git"},
           {Access(), "http://127.0.0.1.evil.example/git/prj_1.git"},
           {Access(), "ssh://git@github.com/acme/shop.git"},
           {Access(), "git@github.com:acme/shop.git"},
           {Access(), "file:///srv/git/shop.git"},
           {Access(), "http://alice:hunter22@127.0.0.1:50080/git/prj_1.git"},
           {no_github, "https://github.com/acme/shop.git"}}) {
    auto credentials = MeshCredentialsFor(access, url);
    EXPECT_EQ(credentials.status().code(), absl::StatusCode::kFailedPrecondition) << url;
    EXPECT_THAT(credentials.status().message(), HasSubstr("not on the mesh's git host")) << url;
    EXPECT_THAT(credentials.status().message(), Not(HasSubstr("hunter22")));
  }
}

}  // namespace
}  // namespace orchestrator::git
