// GitHubHost against a fake of GitHub (tests/fakes/github_api.py) that
// follows its REST API's documented shapes and serves git over HTTP for
// real, pushed to and read back with the git command line.
#include "services/common/git/github_host.h"

#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/fake_github.h"
#include "tests/support/run_git.h"
#include "tests/support/temp_dir.h"

namespace orchestrator::git {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr const char* kToken = ::orchestrator::testing::kFakeGitHubToken;

using ::orchestrator::testing::FakeGitHub;
using ::orchestrator::testing::TempDir;

struct GitRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// The git command line in `dir`, with none of this machine's configuration
// and no prompts.
GitRun Git(const std::string& dir, const std::vector<std::string>& args) {
  const auto run = ::orchestrator::testing::RunGit(args, dir);
  return {run.exit_code, run.out + run.err};
}

// A repository in `dir` with one commit on main; its id.
std::string CommitOne(const std::string& dir, const std::string& file) {
  EXPECT_EQ(Git(dir, {"init", "-q", "-b", "main"}).exit_code, 0);
  std::ofstream(dir + "/" + file) << "hello\n";
  EXPECT_EQ(Git(dir, {"add", "."}).exit_code, 0);
  EXPECT_EQ(Git(dir, {"commit", "-q", "-m", "first"}).exit_code, 0);
  const GitRun head = Git(dir, {"rev-parse", "HEAD"});
  return std::string(absl::StripAsciiWhitespace(head.output));
}

// `git push` of `dir`'s main to `repository` with `credentials`.
GitRun Push(const std::string& dir, const Repository& repository,
            const GitCredentials& credentials) {
  return Git(dir, {"-c", "http.extraHeader=" + credentials.http_header, "push",
                   repository.clone_url, "main"});
}

std::unique_ptr<GitHubHost> HostOf(const FakeGitHub& fake, const std::string& owner = "",
                                   const std::string& token = kToken) {
  auto host = GitHubHost::FromConfig(
      {.api_url = fake.url(), .owner = owner, .token = token, .timeout = absl::Seconds(20)});
  EXPECT_TRUE(host.ok()) << host.status();
  return host.ok() ? *std::move(host) : nullptr;
}

NewRepository Shop() {
  return {.name = "shop", .project_id = "prj_1", .description = "The shop\nof Alice"};
}

NewRepository Named(const std::string& name) {
  return {.name = name, .project_id = "prj_1", .description = ""};
}

Repository At(const std::string& clone_url) {
  return {.clone_url = clone_url, .web_url = "", .full_name = "octocat/shop"};
}

GitHubConfig Config(const std::string& api_url, const std::string& owner,
                    const std::string& token) {
  GitHubConfig config;
  config.api_url = api_url;
  config.owner = owner;
  config.token = token;
  return config;
}

TEST(GitHubHost, FindsNothingWhereNothingIs) {
  FakeGitHub fake;
  auto host = HostOf(fake);
  EXPECT_EQ(host->Kind(), "github");
  auto found = host->Find("shop");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(found->has_value());
}

TEST(GitHubHost, CreatedRepositoryTakesAPushAndIsFound) {
  FakeGitHub fake;
  auto host = HostOf(fake);
  auto repo = host->Create(Shop());
  ASSERT_TRUE(repo.ok()) << repo.status();
  EXPECT_EQ(repo->full_name, "octocat/shop");
  EXPECT_EQ(repo->clone_url, fake.url() + "/octocat/shop.git");
  EXPECT_EQ(repo->web_url, fake.url() + "/octocat/shop");

  auto found = host->Find("shop");
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->clone_url, repo->clone_url);

  auto credentials = host->PushCredentials(*repo);
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_THAT(credentials->http_header, Not(HasSubstr(kToken)));  // encoded, not in clear
  TempDir work;
  const std::string head = CommitOne(work.path(), "README.md");
  const GitRun push = Push(work.path(), *repo, *credentials);
  ASSERT_EQ(push.exit_code, 0) << push.output;
  const GitRun remote = Git(work.path(), {"-c", "http.extraHeader=" + credentials->http_header,
                                          "ls-remote", repo->clone_url, "main"});
  ASSERT_EQ(remote.exit_code, 0) << remote.output;
  EXPECT_EQ(remote.output, head + "\trefs/heads/main\n");
  // Without the credentials the remote refuses.
  const GitRun anonymous = Git(work.path(), {"ls-remote", repo->clone_url});
  EXPECT_NE(anonymous.exit_code, 0);
}

TEST(GitHubHost, PushAndHeadGoOverHttpsWithTheToken) {
  FakeGitHub fake;
  auto host = HostOf(fake);
  auto repo = host->Create(Shop());
  ASSERT_TRUE(repo.ok()) << repo.status();
  EXPECT_EQ(host->Head(*repo, "main").status().code(), absl::StatusCode::kNotFound);
  TempDir work;
  const std::string head = CommitOne(work.path(), "README.md");
  const absl::Status pushed = host->Push(*repo, work.path(), "main");
  ASSERT_TRUE(pushed.ok()) << pushed;
  EXPECT_EQ(host->Head(*repo, "main").value_or(""), head);

  fake.Control("POST", "repos",
               R"({"full_name":"octocat/shop","reject_push":"this repository is archived"})");
  CommitOne(work.path(), "CHANGES.md");
  const absl::Status refused = host->Push(*repo, work.path(), "main");
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_THAT(refused.message(), HasSubstr("this repository is archived"));
  EXPECT_THAT(refused.message(), Not(HasSubstr(kToken)));
  EXPECT_EQ(host->Head(*repo, "main").value_or(""), head);
}

TEST(GitHubHost, CreatingTwiceIsAlreadyExistsAndMakesOne) {
  FakeGitHub fake;
  auto host = HostOf(fake);
  ASSERT_TRUE(host->Create(Shop()).ok());
  auto again = host->Create(Shop());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(again.status().message(), "repository octocat/shop already exists on GitHub");
  EXPECT_THAT(fake.Created(), ElementsAre("octocat/shop"));
}

TEST(GitHubHost, ANameSomeoneElseTookIsAlreadyExists) {
  FakeGitHub fake({"--existing", "octocat/taken"});
  auto host = HostOf(fake);
  auto found = host->Find("taken");
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->full_name, "octocat/taken");
  // GitHub's names are case-insensitive.
  auto created = host->Create(Named("Taken"));
  EXPECT_EQ(created.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(created.status().message(), "repository octocat/Taken already exists on GitHub");
  EXPECT_THAT(fake.Created(), IsEmpty());
}

TEST(GitHubHost, CreatesInTheOrganisation) {
  FakeGitHub fake;
  auto host = HostOf(fake, "acme");
  auto repo = host->Create(Shop());
  ASSERT_TRUE(repo.ok()) << repo.status();
  EXPECT_EQ(repo->full_name, "acme/shop");
  EXPECT_EQ(repo->clone_url, fake.url() + "/acme/shop.git");
  auto found = host->Find("shop");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_TRUE(found->has_value());
  // The user's own account has no such repository.
  auto own = HostOf(fake)->Find("shop");
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_FALSE(own->has_value());
}

TEST(GitHubHost, AnOrganisationTheTokenCannotCreateInIsPermissionDenied) {
  FakeGitHub fake;
  auto repo = HostOf(fake, "someone-elses-org")->Create(Shop());
  EXPECT_EQ(repo.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(repo.status().message(), HasSubstr("someone-elses-org"));
  EXPECT_THAT(repo.status().message(), HasSubstr("Not Found"));  // GitHub's message
  EXPECT_THAT(fake.Created(), IsEmpty());
}

TEST(GitHubHost, ABadTokenIsUnauthenticated) {
  FakeGitHub fake;
  auto host = HostOf(fake, "", "ghp_wrong-token");
  auto found = host->Find("shop");
  EXPECT_EQ(found.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(found.status().message(), HasSubstr("Bad credentials"));
  EXPECT_THAT(found.status().message(), Not(HasSubstr("wrong-token")));
  auto org_repo = HostOf(fake, "acme", "ghp_wrong-token")->Create(Shop());
  EXPECT_EQ(org_repo.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(org_repo.status().message(), Not(HasSubstr("wrong-token")));
  EXPECT_THAT(fake.Created(), IsEmpty());
}

TEST(GitHubHost, AnUnreachableGitHubIsUnavailable) {
  FakeGitHub fake;
  auto host = HostOf(fake, "acme");
  fake.Stop();
  auto found = host->Find("shop");
  EXPECT_EQ(found.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(found.status().message(), HasSubstr("127.0.0.1:" + fake.port()));
  EXPECT_THAT(found.status().message(), Not(HasSubstr(kToken)));
  auto created = host->Create(Shop());
  EXPECT_EQ(created.status().code(), absl::StatusCode::kUnavailable);
}

TEST(GitHubHost, InvalidNamesAreRefusedBeforeAsking) {
  FakeGitHub fake;
  auto host = HostOf(fake);
  const std::vector<std::string> names = {
      "", ".", "..", "a/b", "a b", "shop?", std::string(101, 'a'), std::string("a\0b", 3)};
  for (const std::string& name : names) {
    auto found = host->Find(name);
    EXPECT_EQ(found.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(found.status().message(), HasSubstr("repository_name")) << name;
    auto created = host->Create(Named(name));
    EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(created.status().message(), HasSubstr("repository_name")) << name;
  }
  EXPECT_TRUE(host->Create(Named(std::string(100, 'a'))).ok());
  EXPECT_TRUE(host->Create(Named(".github_-x")).ok());
  EXPECT_THAT(fake.Created(),
              ElementsAre("octocat/" + std::string(100, 'a'), "octocat/.github_-x"));
}

TEST(GitHubHost, APushTheRemoteRefusesShowsItsMessage) {
  FakeGitHub fake;
  auto host = HostOf(fake);
  auto repo = host->Create(Shop());
  ASSERT_TRUE(repo.ok()) << repo.status();
  fake.Control("POST", "repos",
               R"({"full_name":"octocat/shop","reject_push":"this repository is archived"})");
  auto credentials = host->PushCredentials(*repo);
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  TempDir work;
  CommitOne(work.path(), "README.md");
  const GitRun push = Push(work.path(), *repo, *credentials);
  EXPECT_NE(push.exit_code, 0);
  EXPECT_THAT(push.output, HasSubstr("this repository is archived"));
}

TEST(GitHubHost, CredentialsOfAnotherTokenCannotPush) {
  FakeGitHub fake;
  auto repo = HostOf(fake)->Create(Shop());
  ASSERT_TRUE(repo.ok()) << repo.status();
  auto credentials = HostOf(fake, "", "ghp_wrong-token")->PushCredentials(*repo);
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  TempDir work;
  CommitOne(work.path(), "README.md");
  const GitRun push = Push(work.path(), *repo, *credentials);
  EXPECT_NE(push.exit_code, 0);
}

TEST(GitHubHost, CredentialsAreOnlyForThisGitHub) {
  auto host = GitHubHost::FromConfig(Config("https://api.github.com", "", kToken));
  ASSERT_TRUE(host.ok()) << host.status();
  auto ours = (*host)->PushCredentials(At("https://github.com/octocat/shop.git"));
  ASSERT_TRUE(ours.ok()) << ours.status();
  EXPECT_EQ(ours->http_header,
            "Authorization: Basic " + absl::Base64Escape(std::string("x-access-token:") + kToken));
  for (const char* elsewhere :
       {"https://evil.example/octocat/shop.git", "http://github.com/octocat/shop.git",
        "https://github.com.evil.example/shop.git", "https://github.com:8443/octocat/shop.git",
        "not a url"}) {
    auto theirs = (*host)->PushCredentials(At(elsewhere));
    EXPECT_EQ(theirs.status().code(), absl::StatusCode::kInvalidArgument) << elsewhere;
  }
}

// octocat/shop on the fake with one commit on main, pushed from `work`.
Repository ShopWithMain(GitHubHost& host, const std::string& work) {
  auto repo = host.Create(Shop());
  EXPECT_TRUE(repo.ok()) << repo.status();
  CommitOne(work, "README.md");
  EXPECT_TRUE(repo.ok() && host.Push(*repo, work, "main").ok());
  return repo.value_or(Repository{});
}

TEST(GitHubHost, OpensAPullRequestFromTheRunsBranchOnce) {
  FakeGitHub fake;
  auto host = HostOf(fake);
  TempDir work;
  const Repository repo = ShopWithMain(*host, work.path());
  ASSERT_EQ(Git(work.path(), {"checkout", "-qb", "orchestrator/run_1"}).exit_code, 0);
  std::ofstream(work.path() + "/app.py") << "print('howdy')\n";
  ASSERT_EQ(Git(work.path(), {"add", "."}).exit_code, 0);
  ASSERT_EQ(Git(work.path(), {"commit", "-qm", "Say howdy"}).exit_code, 0);
  ASSERT_TRUE(host->Push(repo, work.path(), "orchestrator/run_1").ok());

  auto url = host->OpenPullRequest("octocat/shop", "orchestrator/run_1", "main", "Say howdy",
                                   "The agent's summary.\n\nOrchestrator-Run: run_1");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(*url, fake.url() + "/octocat/shop/pull/1");
  // A retry (say after a crash) answers the open one and opens no second.
  auto again = host->OpenPullRequest("octocat/shop", "orchestrator/run_1", "main", "Say howdy", "");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *url);
  const auto pulls = fake.Control("GET", "state").fields().at("pulls").list_value();
  ASSERT_EQ(pulls.values_size(), 1);
  const auto& pull = pulls.values(0).struct_value().fields();
  EXPECT_EQ(pull.at("head").string_value(), "orchestrator/run_1");
  EXPECT_EQ(pull.at("base").string_value(), "main");
  EXPECT_EQ(pull.at("title").string_value(), "Say howdy");
  EXPECT_EQ(pull.at("body").string_value(), "The agent's summary.\n\nOrchestrator-Run: run_1");
}

TEST(GitHubHost, APullRequestGitHubRefusesSaysWhy) {
  FakeGitHub fake;
  auto host = HostOf(fake);
  TempDir work;
  ShopWithMain(*host, work.path());

  auto same = host->OpenPullRequest("octocat/shop", "main", "main", "Nothing", "");
  EXPECT_EQ(same.status().code(), absl::StatusCode::kFailedPrecondition) << same.status();
  EXPECT_THAT(same.status().message(), HasSubstr("No commits between main and main"));
  auto missing = host->OpenPullRequest("octocat/shop", "orchestrator/gone", "main", "Gone", "");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition) << missing.status();
  EXPECT_THAT(missing.status().message(), HasSubstr("head invalid"));
  EXPECT_EQ(host->OpenPullRequest("octocat/absent", "a", "main", "x", "").status().code(),
            absl::StatusCode::kNotFound);
  for (const auto& [repository, head, base, title] :
       std::vector<std::tuple<std::string, std::string, std::string, std::string>>{
           {"shop", "a", "main", "x"},
           {"octocat/shop", "--force", "main", "x"},
           {"octocat/shop", "a", "other:main", "x"},
           {"octocat/shop", "a b", "main", "x"},
           {"octocat/shop", "a", "main", ""}}) {
    EXPECT_EQ(host->OpenPullRequest(repository, head, base, title, "").status().code(),
              absl::StatusCode::kInvalidArgument)
        << repository << " " << head << " " << base;
  }
  EXPECT_THAT(fake.Control("GET", "state").fields().at("pulls").list_value().values(), IsEmpty());
}

TEST(GitHubHost, ConfigIsChecked) {
  EXPECT_EQ(GitHubHost::FromConfig(Config("https://api.github.com", "", "")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GitHubHost::FromConfig(Config("api.github.com", "", kToken)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GitHubHost::FromConfig(Config("https://api.github.com", "a/b", kToken)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace orchestrator::git
