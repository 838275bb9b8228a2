// GitCli against real git and local bare repositories: what the mesh
// relies on for remotes (pushes, remote heads, clones at a tag) and how failures reach it (the
// remote's words, the right code, never the credential).
#include "services/common/git/git_cli.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/git/local_repository.h"
#include "tests/support/echo_http_server.h"
#include "tests/support/run_git.h"
#include "tests/support/temp_dir.h"

namespace orchestrator::git {
namespace {

using ::orchestrator::testing::ReadFile;
using ::orchestrator::testing::RunGit;
using ::orchestrator::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

const Signature kScaffolder = {"Scaffolder", "scaffolder@orchestrator.local",
                               absl::FromUnixSeconds(1700000000)};
const GitCredentials kSecret = {"Authorization: Bearer s3cr3t-mesh-token"};

// A TCP listener that accepts connections (the kernel does) but never
// answers, or, once closed, a port where nothing listens.
class Listener {
 public:
  Listener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    listen(fd_, 16);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~Listener() { Close(); }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  std::string Url() const { return absl::StrCat("http://127.0.0.1:", port_, "/git/x.git"); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

class GitCliTest : public ::testing::Test {
 protected:
  // A bare repository under the temp dir; its path.
  std::string Bare(const std::string& name) {
    const std::string path = tmp_.Path(name + ".git");
    EXPECT_EQ(RunGit({"init", "-q", "--bare", path}).exit_code, 0);
    return path;
  }

  // A work tree with `files` committed on main.
  std::string Commit(const std::string& dir, const std::map<std::string, std::string>& files,
                     const std::string& message = "scaffold") {
    for (const auto& [name, content] : files) tmp_.Write(dir + "/" + name, content);
    auto id = CommitAll(tmp_.Path(dir), "main", message, kScaffolder);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.value_or("");
  }

  TempDir tmp_;
  GitCli cli_{absl::Seconds(30)};
};

TEST_F(GitCliTest, PushThenRemoteHeadNamesThePushedCommit) {
  const std::string remote = Bare("shop");
  const std::string id = Commit("work", {{"README.md", "hello\n"}});
  ASSERT_TRUE(cli_.Push(tmp_.Path("work"), remote, "main", {}).ok());
  auto head = cli_.RemoteHead(remote, "refs/heads/main", {});
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(*head, id);
  // Pushing the same commit again changes nothing and succeeds.
  EXPECT_TRUE(cli_.Push(tmp_.Path("work"), remote, "main", {}).ok());
  EXPECT_EQ(cli_.RemoteHead(remote, "refs/heads/other", {}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(GitCliTest, CloneAtATagHasThatTagsFiles) {
  const std::string remote = Bare("templates");
  const std::string v1 = Commit("work", {{"VERSION", "1\n"}});
  ASSERT_EQ(RunGit({"tag", "-a", "-m", "first", "v1"}, tmp_.Path("work")).exit_code, 0);
  tmp_.Write("work/VERSION", "2\n");
  ASSERT_EQ(RunGit({"commit", "-qam", "second"}, tmp_.Path("work")).exit_code, 0);
  ASSERT_EQ(RunGit({"push", "-q", remote, "main", "v1"}, tmp_.Path("work")).exit_code, 0);

  ASSERT_TRUE(cli_.CloneAt(remote, "v1", tmp_.Path("at-v1"), {}).ok());
  EXPECT_EQ(ReadFile(tmp_.Path("at-v1/VERSION")), "1\n");
  ASSERT_TRUE(cli_.CloneAt(remote, "main", tmp_.Path("at-main"), {}).ok());
  EXPECT_EQ(ReadFile(tmp_.Path("at-main/VERSION")), "2\n");
  // An annotated tag's head is the commit it tags.
  EXPECT_EQ(cli_.RemoteHead(remote, "refs/tags/v1", {}).value_or(""), v1);

  EXPECT_EQ(cli_.CloneAt(remote, "v1", tmp_.Path("at-v1"), {}).code(),
            absl::StatusCode::kFailedPrecondition)
      << "the directory exists";
  EXPECT_EQ(cli_.CloneAt(remote, "v9", tmp_.Path("at-v9"), {}).code(), absl::StatusCode::kNotFound);
}

TEST_F(GitCliTest, ARefusingHookIsFailedPreconditionWithTheRemotesWords) {
  const std::string remote = Bare("guarded");
  tmp_.Write("guarded.git/hooks/pre-receive", "#!/bin/sh\necho 'nope: not today' >&2\nexit 1\n");
  std::filesystem::permissions(tmp_.Path("guarded.git/hooks/pre-receive"),
                               std::filesystem::perms::owner_all);
  Commit("work", {{"a", "a"}});
  const absl::Status pushed = cli_.Push(tmp_.Path("work"), remote, "main", kSecret);
  EXPECT_EQ(pushed.code(), absl::StatusCode::kFailedPrecondition) << pushed;
  EXPECT_THAT(pushed.message(), HasSubstr("remote: nope: not today"));
  EXPECT_THAT(pushed.message(), Not(HasSubstr("s3cr3t")));
}

TEST_F(GitCliTest, ANonFastForwardPushIsFailedPrecondition) {
  const std::string remote = Bare("shared");
  Commit("mine", {{"a", "mine"}});
  ASSERT_TRUE(cli_.Push(tmp_.Path("mine"), remote, "main", {}).ok());
  Commit("theirs", {{"a", "theirs"}});
  const absl::Status pushed = cli_.Push(tmp_.Path("theirs"), remote, "main", {});
  EXPECT_EQ(pushed.code(), absl::StatusCode::kFailedPrecondition) << pushed;
  EXPECT_THAT(pushed.message(), HasSubstr("rejected"));
}

TEST_F(GitCliTest, AMissingRepositoryIsNotFound) {
  Commit("work", {{"a", "a"}});
  EXPECT_EQ(cli_.Push(tmp_.Path("work"), tmp_.Path("absent.git"), "main", {}).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(cli_.RemoteHead(tmp_.Path("absent.git"), "refs/heads/main", {}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(GitCliTest, AnUnreachableRemoteIsUnavailableAndTheCredentialStaysOut) {
  Listener closed;
  closed.Close();
  Commit("work", {{"a", "a"}});
  const absl::Status pushed = cli_.Push(tmp_.Path("work"), closed.Url(), "main", kSecret);
  EXPECT_EQ(pushed.code(), absl::StatusCode::kUnavailable) << pushed;
  EXPECT_THAT(pushed.message(), Not(HasSubstr("s3cr3t")));
  const auto head =
      cli_.RemoteHead("http://unresolvable.invalid/x.git", "refs/heads/main", kSecret);
  EXPECT_EQ(head.status().code(), absl::StatusCode::kUnavailable) << head.status();
}

TEST_F(GitCliTest, TheCredentialNeverAppearsInAnErrorEvenWhenTheServerEchoesIt) {
  // Answers every request with the request's own head, Authorization included.
  orchestrator::testing::EchoHttpServer echo;
  const std::string url = absl::StrCat("http://", echo.address(), "/git/x.git");
  const GitCredentials user_and_password = {"Authorization: Basic YWxpY2U6czNjcjN0"};
  for (const GitCredentials& credentials : {kSecret, user_and_password}) {
    const auto head = cli_.RemoteHead(url, "refs/heads/main", credentials);
    EXPECT_FALSE(head.ok());
    EXPECT_THAT(head.status().message(), Not(HasSubstr("s3cr3t")));
    EXPECT_THAT(head.status().message(), Not(HasSubstr("YWxpY2U6czNjcjN0")));
    const absl::Status cloned = cli_.CloneAt(url, "main", tmp_.Path("clone"), credentials);
    EXPECT_FALSE(cloned.ok());
    EXPECT_THAT(cloned.message(), Not(HasSubstr("s3cr3t")));
  }
  EXPECT_GT(echo.accepted(), 0) << "git reached the server";
  // A password in a URL is not repeated either.
  const auto in_url = cli_.RemoteHead(
      absl::StrCat("http://alice:hunter22@", echo.address(), "/git/x.git"), "main", {});
  EXPECT_THAT(in_url.status().message(), Not(HasSubstr("hunter22")));
}

TEST_F(GitCliTest, ARemoteThatNeverAnswersIsDeadlineExceeded) {
  Listener silent;
  const GitCli impatient(absl::Milliseconds(500));
  const absl::Time start = absl::Now();
  const auto head = impatient.RemoteHead(silent.Url(), "refs/heads/main", kSecret);
  EXPECT_EQ(head.status().code(), absl::StatusCode::kDeadlineExceeded) << head.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST_F(GitCliTest, CancelledBeforeItStartsIsCancelled) {
  std::atomic<bool> cancel{true};
  const GitCli cancelled(absl::Seconds(30), &cancel);
  Listener silent;
  EXPECT_EQ(cancelled.RemoteHead(silent.Url(), "refs/heads/main", {}).status().code(),
            absl::StatusCode::kCancelled);
}

TEST_F(GitCliTest, OptionLikeUrlsAndBadInputsAreRefused) {
  Commit("work", {{"a", "a"}});
  EXPECT_EQ(cli_.Push(tmp_.Path("work"), "--upload-pack=touch /tmp/owned", "main", {}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cli_.RemoteHead("-oProxyCommand=x", "refs/heads/main", {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cli_.CloneAt("--help", "main", tmp_.Path("c"), {}).code(),
            absl::StatusCode::kInvalidArgument);
  // Only http(s) and local repositories: no ext:: helpers running commands.
  EXPECT_FALSE(cli_.RemoteHead("ext::sh -c touch% /tmp/owned", "refs/heads/main", {}).ok());
  EXPECT_FALSE(std::filesystem::exists("/tmp/owned"));
}

}  // namespace
}  // namespace orchestrator::git
