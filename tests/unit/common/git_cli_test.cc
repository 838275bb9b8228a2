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

#include "absl/strings/ascii.h"
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

// The engineering service's push path: a bare mirror per project fetched
// from the remote, an agent's commit arriving as a bundle, then pushed by
// explicit refspecs.
class GitPushPathTest : public GitCliTest {
 protected:
  // The remote with `main` at one commit, and a work tree cloned from it.
  void SetUp() override {
    remote_ = Bare("remote");
    base_ = Commit("work", {{"app.py", "print('hello')\n"}});
    ASSERT_EQ(RunGit({"push", "-q", remote_, "main"}, tmp_.Path("work")).exit_code, 0);
    mirror_ = tmp_.Path("mirrors/shop.git");
  }

  // A commit on top of what the work tree has checked out; its id.
  std::string CommitOnTop(const std::string& file, const std::string& content,
                          const std::string& message) {
    tmp_.Write("work/" + file, content);
    EXPECT_EQ(RunGit({"add", "-A"}, tmp_.Path("work")).exit_code, 0);
    EXPECT_EQ(RunGit({"commit", "-qm", message}, tmp_.Path("work")).exit_code, 0);
    return std::string(
        absl::StripAsciiWhitespace(RunGit({"rev-parse", "HEAD"}, tmp_.Path("work")).out));
  }

  // Moves the remote's `branch` to `commit` of the work tree, as someone
  // else's push would (forced).
  void PushAsSomeoneElse(const std::string& commit, const std::string& branch) {
    ASSERT_EQ(RunGit({"push", "-qf", remote_, commit + ":refs/heads/" + branch}, tmp_.Path("work"))
                  .exit_code,
              0);
  }

  std::map<std::string, std::string> RemoteRefs() {
    auto heads =
        cli_.RemoteHeads(remote_, {"refs/heads/main", "refs/heads/orchestrator/run_1"}, {});
    EXPECT_TRUE(heads.ok()) << heads.status();
    return heads.value_or(std::map<std::string, std::string>{});
  }

  // The work tree's `rev` as a bundle of what `base` lacks; its path.
  std::string Bundle(const std::string& name, const std::string& range) {
    const std::string path = tmp_.Path(name);
    auto made = RunGit({"bundle", "create", "-q", path, range}, tmp_.Path("work"));
    EXPECT_EQ(made.exit_code, 0) << made.err;
    return path;
  }

  std::string remote_, base_, mirror_;
};

TEST_F(GitPushPathTest, FetchMakesABareMirrorAndKeepsItCurrent) {
  ASSERT_FALSE(std::filesystem::exists(mirror_));
  ASSERT_TRUE(cli_.Fetch(mirror_, remote_, {"+refs/heads/*:refs/heads/*"}, {}).ok());
  EXPECT_TRUE(std::filesystem::exists(mirror_ + "/HEAD"));
  EXPECT_FALSE(std::filesystem::exists(mirror_ + "/.git"));
  EXPECT_EQ(cli_.ResolveCommit(mirror_, "refs/heads/main").value_or(""), base_);

  const std::string next = CommitOnTop("app.py", "print('hi')\n", "second");
  PushAsSomeoneElse(next, "main");
  ASSERT_TRUE(cli_.Fetch(mirror_, remote_, {"+refs/heads/*:refs/heads/*"}, {}).ok());
  EXPECT_EQ(cli_.ResolveCommit(mirror_, "refs/heads/main").value_or(""), next);

  EXPECT_EQ(cli_.Fetch(mirror_, remote_, {"refs/heads/absent:refs/heads/absent"}, {}).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(cli_.ResolveCommit(mirror_, "refs/heads/absent").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(cli_.Fetch(mirror_, remote_, {"--upload-pack=touch /tmp/owned"}, {}).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(GitPushPathTest, ABundleRoundTripsIntoTheMirrorAndIsVerifiedFirst) {
  ASSERT_TRUE(cli_.Fetch(mirror_, remote_, {"+refs/heads/*:refs/heads/*"}, {}).ok());
  ASSERT_EQ(RunGit({"checkout", "-qb", "orchestrator/run_1"}, tmp_.Path("work")).exit_code, 0);
  const std::string change = CommitOnTop("app.py", "print('howdy')\n", "Say howdy");
  const std::string bundle = Bundle("change.bundle", "main..orchestrator/run_1");

  auto fetched = cli_.FetchBundle(mirror_, bundle, "refs/heads/orchestrator/run_1");
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(*fetched, change);
  EXPECT_EQ(cli_.ResolveCommit(mirror_, "refs/heads/orchestrator/run_1").value_or(""), change);

  // A ref the bundle does not hold; a mirror without its prerequisite (the
  // base); not a bundle at all; no file.
  EXPECT_EQ(cli_.FetchBundle(mirror_, bundle, "refs/heads/other").status().code(),
            absl::StatusCode::kNotFound);
  const std::string empty = tmp_.Path("empty.git");
  ASSERT_EQ(RunGit({"init", "-q", "--bare", empty}).exit_code, 0);
  auto lacking = cli_.FetchBundle(empty, bundle, "refs/heads/orchestrator/run_1");
  EXPECT_EQ(lacking.status().code(), absl::StatusCode::kFailedPrecondition) << lacking.status();
  EXPECT_THAT(std::string(lacking.status().message()), HasSubstr("prerequisite"));
  EXPECT_EQ(cli_.ResolveCommit(empty, "refs/heads/orchestrator/run_1").status().code(),
            absl::StatusCode::kNotFound);
  const std::string junk = tmp_.Write("junk.bundle", "not a bundle\n");
  EXPECT_EQ(cli_.FetchBundle(mirror_, junk, "refs/heads/orchestrator/run_1").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(cli_.FetchBundle(mirror_, tmp_.Path("none.bundle"), "refs/heads/orchestrator/run_1")
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(cli_.FetchBundle(mirror_, bundle, "main").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(GitPushPathTest, AnAtomicPushMovesBothRefsOrNeither) {
  const std::string change = CommitOnTop("app.py", "print('howdy')\n", "Say howdy");
  ASSERT_TRUE(cli_.Fetch(mirror_, tmp_.Path("work"), {"+refs/heads/*:refs/heads/*"}, {}).ok());
  const PushOptions atomic{.atomic = true};
  ASSERT_TRUE(
      cli_.PushRefspecs(mirror_, remote_,
                        {change + ":refs/heads/orchestrator/run_1", change + ":refs/heads/main"},
                        atomic, {})
          .ok());
  EXPECT_EQ(RemoteRefs(),
            (std::map<std::string, std::string>{{"refs/heads/main", change},
                                                {"refs/heads/orchestrator/run_1", change}}));

  // Someone else moved main meanwhile: the run's second change is not a
  // fast-forward of it, so neither ref moves, and the answer says to rebase.
  ASSERT_EQ(RunGit({"checkout", "-qb", "theirs", base_}, tmp_.Path("work")).exit_code, 0);
  const std::string theirs = CommitOnTop("NEWS", "theirs\n", "Theirs");
  PushAsSomeoneElse(theirs, "main");
  ASSERT_EQ(RunGit({"checkout", "-q", "main"}, tmp_.Path("work")).exit_code, 0);
  const std::string second = CommitOnTop("app.py", "print('hey')\n", "Say hey");
  ASSERT_TRUE(
      cli_.Fetch(mirror_, tmp_.Path("work"), {"+refs/heads/main:refs/heads/main"}, {}).ok());
  const absl::Status rejected = cli_.PushRefspecs(
      mirror_, remote_, {second + ":refs/heads/orchestrator/run_1", second + ":refs/heads/main"},
      atomic, {});
  EXPECT_EQ(rejected.code(), absl::StatusCode::kAborted) << rejected;
  EXPECT_THAT(rejected.message(), HasSubstr("refs/heads/main [rejected]"));
  EXPECT_EQ(RemoteRefs(),
            (std::map<std::string, std::string>{{"refs/heads/main", theirs},
                                                {"refs/heads/orchestrator/run_1", change}}));

  // Once the mirror knows their commit, the rejection is a non-fast-forward.
  ASSERT_TRUE(cli_.Fetch(mirror_, remote_, {"+refs/heads/main:refs/remotes/main"}, {}).ok());
  const absl::Status again =
      cli_.PushRefspecs(mirror_, remote_, {second + ":refs/heads/main"}, {}, {});
  EXPECT_EQ(again.code(), absl::StatusCode::kAborted) << again;
  EXPECT_THAT(again.message(), HasSubstr("non-fast-forward"));
}

TEST_F(GitPushPathTest, ARefusingRemoteIsFailedPreconditionNotAborted) {
  tmp_.Write("remote.git/hooks/pre-receive",
             "#!/bin/sh\necho 'GH006: Protected branch' >&2\nexit 1\n");
  std::filesystem::permissions(tmp_.Path("remote.git/hooks/pre-receive"),
                               std::filesystem::perms::owner_all);
  const std::string change = CommitOnTop("app.py", "print('howdy')\n", "Say howdy");
  const absl::Status refused =
      cli_.PushRefspecs(tmp_.Path("work"), remote_,
                        {change + ":refs/heads/orchestrator/run_1", change + ":refs/heads/main"},
                        {.atomic = true}, kSecret);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_THAT(refused.message(), HasSubstr("GH006: Protected branch"));
  EXPECT_THAT(refused.message(), Not(HasSubstr("s3cr3t")));
  EXPECT_EQ(RemoteRefs(), (std::map<std::string, std::string>{{"refs/heads/main", base_}}));
}

TEST_F(GitPushPathTest, ForceWithLeaseMovesTheRunsBranchOnlyFromWhatItExpects) {
  const std::string first = CommitOnTop("app.py", "print('howdy')\n", "Say howdy");
  PushAsSomeoneElse(first, "orchestrator/run_1");
  // The run rebased: its new commit does not descend from the pushed one.
  ASSERT_EQ(RunGit({"reset", "-q", "--hard", base_}, tmp_.Path("work")).exit_code, 0);
  const std::string rebased = CommitOnTop("app.py", "print('howdy!')\n", "Say howdy");
  const std::vector<std::string> spec = {rebased + ":refs/heads/orchestrator/run_1"};
  const std::string dir = tmp_.Path("work");

  EXPECT_EQ(cli_.PushRefspecs(dir, remote_, spec, {}, {}).code(), absl::StatusCode::kAborted);
  const absl::Status stale = cli_.PushRefspecs(
      dir, remote_, spec, {.force_with_lease = {{"refs/heads/orchestrator/run_1", base_}}}, {});
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted) << stale;
  EXPECT_THAT(stale.message(), HasSubstr("stale info"));
  EXPECT_EQ(cli_.PushRefspecs(dir, remote_, spec,
                              {.force_with_lease = {{"refs/heads/orchestrator/run_1", ""}}}, {})
                .code(),
            absl::StatusCode::kAborted)
      << "the lease says the branch must not exist yet";
  EXPECT_EQ(RemoteRefs().at("refs/heads/orchestrator/run_1"), first);

  const absl::Status moved = cli_.PushRefspecs(
      dir, remote_, spec, {.force_with_lease = {{"refs/heads/orchestrator/run_1", first}}}, {});
  ASSERT_TRUE(moved.ok()) << moved;
  EXPECT_EQ(RemoteRefs().at("refs/heads/orchestrator/run_1"), rebased);
  // A lease covers only its ref: main still moves only forward.
  EXPECT_EQ(cli_.PushRefspecs(dir, remote_, {rebased + ":refs/heads/main"},
                              {.force_with_lease = {{"refs/heads/main", base_}}}, {})
                .code(),
            absl::StatusCode::kOk)
      << "a fast-forward with a lease that holds";
}

TEST_F(GitPushPathTest, PushesAreNeverForcedOrAmbiguous) {
  const std::string dir = tmp_.Path("work");
  for (const std::vector<std::string>& bad :
       std::vector<std::vector<std::string>>{{"+main:refs/heads/main"},
                                             {"main"},
                                             {":refs/heads/main"},
                                             {"main:main"},
                                             {"--force"},
                                             {"main:refs/heads/a b"},
                                             {}}) {
    EXPECT_EQ(cli_.PushRefspecs(dir, remote_, bad, {}, {}).code(),
              absl::StatusCode::kInvalidArgument)
        << (bad.empty() ? "" : bad[0]);
  }
  EXPECT_EQ(cli_.PushRefspecs(dir, remote_, {"main:refs/heads/main"},
                              {.force_with_lease = {{"refs/heads/other", ""}}}, {})
                .code(),
            absl::StatusCode::kInvalidArgument)
      << "a lease on a ref not pushed";
  EXPECT_EQ(cli_.PushRefspecs(dir, remote_, {"main:refs/heads/main"},
                              {.force_with_lease = {{"refs/heads/main", "HEAD"}}}, {})
                .code(),
            absl::StatusCode::kInvalidArgument);
  Listener closed;
  closed.Close();
  EXPECT_EQ(cli_.PushRefspecs(dir, closed.Url(), {"main:refs/heads/main"}, {}, kSecret).code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(GitPushPathTest, AncestryAndTheRunsTrailerAreFoundBetweenTwoCommits) {
  const std::string other = CommitOnTop("a", "1\n", "Other\n\nOrchestrator-Run: run_12");
  const std::string mine =
      CommitOnTop("b", "2\n", "Mine\n\nOrchestrator-Run: run_1\nTests: 3 passed, 0 failed");
  const std::string mention = CommitOnTop("c", "3\n", "Mentions Orchestrator-Run: run_1 inline");
  const std::string dir = tmp_.Path("work");

  auto found = cli_.LogGrep(dir, base_, "main", "Orchestrator-Run: run_1");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_THAT(*found, ::testing::ElementsAre(mine));
  EXPECT_THAT(cli_.LogGrep(dir, "", mention, "Orchestrator-Run: run_12")
                  .value_or(std::vector<std::string>{}),
              ::testing::ElementsAre(other));
  EXPECT_THAT(cli_.LogGrep(dir, mine, "main", "Orchestrator-Run: run_1")
                  .value_or(std::vector<std::string>{"x"}),
              ::testing::IsEmpty());
  EXPECT_EQ(cli_.LogGrep(dir, base_, "refs/heads/absent", "x").status().code(),
            absl::StatusCode::kNotFound);

  EXPECT_TRUE(cli_.IsAncestor(dir, base_, mention).value_or(false));
  EXPECT_TRUE(cli_.IsAncestor(dir, mine, mine).value_or(false));
  EXPECT_FALSE(cli_.IsAncestor(dir, mention, base_).value_or(true));
  EXPECT_EQ(cli_.IsAncestor(dir, std::string(40, 'a'), base_).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(cli_.IsAncestor(dir, "--all", base_).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace orchestrator::git
