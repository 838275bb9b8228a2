// The repositories the mesh keeps on its own disk, worked on in process
// (libgit2), checked against the real git command line: the same commit for
// the same inputs, pushes into bare repositories that git then clones, and
// refusals with the right code.
#include "services/common/git/local_repository.h"

#include <filesystem>
#include <map>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/run_git.h"
#include "tests/support/temp_dir.h"

namespace orchestrator::git {
namespace {

using ::orchestrator::testing::ReadFile;
using ::orchestrator::testing::RunGit;
using ::orchestrator::testing::TempDir;
using ::testing::HasSubstr;

const Signature kScaffolder = {"Scaffolder", "scaffolder@orchestrator.local",
                               absl::FromUnixSeconds(1700000000)};

class LocalRepositoryTest : public ::testing::Test {
 protected:
  // A work tree with `files` committed on main.
  std::string Commit(const std::string& dir, const std::map<std::string, std::string>& files,
                     const std::string& message = "scaffold") {
    for (const auto& [name, content] : files) tmp_.Write(dir + "/" + name, content);
    auto id = CommitAll(tmp_.Path(dir), "main", message, kScaffolder);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.value_or("");
  }
  std::string Bare(const std::string& name) {
    const std::string path = tmp_.Path(name + ".git");
    EXPECT_TRUE(InitBare(path, "main").ok());
    return path;
  }

  TempDir tmp_;
};

TEST_F(LocalRepositoryTest, TheSameTreeMessageAndSignatureGiveTheSameCommit) {
  const std::map<std::string, std::string> files = {{"README.md", "# shop\n"},
                                                    {"src/main.py", "print('hi')\n"}};
  const std::string first = Commit("one", files);
  const std::string again = Commit("two", files);
  EXPECT_EQ(first.size(), 40u);
  EXPECT_EQ(first, again) << "a retried scaffold must get the commit it pushed before";
  EXPECT_NE(Commit("three", files, "another message"), first);
  EXPECT_EQ(RunGit({"log", "-1", "--format=%an <%ae> %at|%cn %ct|%B"}, tmp_.Path("one")).out,
            "Scaffolder <scaffolder@orchestrator.local> 1700000000|Scaffolder 1700000000|"
            "scaffold\n\n");
  // git agrees with libgit2 on what the tree is.
  EXPECT_EQ(RunGit({"fsck", "--strict"}, tmp_.Path("one")).exit_code, 0);
}

TEST_F(LocalRepositoryTest, EveryFileIsCommittedEvenIntoAnEmptyDirectory) {
  auto empty = CommitAll(tmp_.Path("nothing/yet"), "trunk", "empty", kScaffolder);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(RunGit({"branch", "--show-current"}, tmp_.Path("nothing/yet")).out, "trunk\n");
  tmp_.Write("full/run.sh", "#!/bin/sh\n");
  std::filesystem::permissions(tmp_.Path("full/run.sh"), std::filesystem::perms::owner_all);
  Commit("full", {{"a.txt", "a"}, {"dir/b.txt", "b"}, {".gitignore", "*.log\n"}, {"x.log", "x"}});
  EXPECT_EQ(RunGit({"ls-files", "-s", "run.sh"}, tmp_.Path("full")).out.substr(0, 7), "100755 ")
      << "the executable bit is kept";
  EXPECT_EQ(RunGit({"ls-files"}, tmp_.Path("full")).out, ".gitignore\na.txt\ndir/b.txt\nrun.sh\n");
  EXPECT_EQ(RunGit({"status", "--porcelain"}, tmp_.Path("full")).out, "");
}

TEST_F(LocalRepositoryTest, CommittingAgainOnTheBranchMakesAChild) {
  const std::string first = Commit("work", {{"a", "1"}});
  const std::string second = Commit("work", {{"a", "2"}}, "second");
  EXPECT_NE(first, second);
  EXPECT_EQ(RunGit({"rev-parse", "HEAD^"}, tmp_.Path("work")).out, first + "\n");
}

TEST_F(LocalRepositoryTest, APushLandsInTheBareRepositoryThatGitThenClones) {
  const std::string remote = Bare("shop");
  EXPECT_EQ(BranchHead(remote, "main").status().code(), absl::StatusCode::kNotFound)
      << "an empty repository has no main yet";
  const std::string id = Commit("work", {{"README.md", "hello\n"}});
  ASSERT_TRUE(PushToBare(tmp_.Path("work"), remote, "main").ok());
  EXPECT_EQ(BranchHead(remote, "main").value_or(""), id);
  // Pushing the same commit again changes nothing and succeeds.
  EXPECT_TRUE(PushToBare(tmp_.Path("work"), remote, "main").ok());
  // A fast-forward moves it.
  const std::string next = Commit("work", {{"README.md", "hello again\n"}}, "next");
  ASSERT_TRUE(PushToBare(tmp_.Path("work"), remote, "main").ok());
  EXPECT_EQ(BranchHead(remote, "main").value_or(""), next);

  ASSERT_EQ(RunGit({"clone", "-q", remote, tmp_.Path("clone")}).exit_code, 0);
  EXPECT_EQ(ReadFile(tmp_.Path("clone/README.md")), "hello again\n");
  EXPECT_EQ(RunGit({"fsck", "--strict"}, remote).exit_code, 0);
  EXPECT_EQ(RunGit({"symbolic-ref", "HEAD"}, remote).out, "refs/heads/main\n");
}

TEST_F(LocalRepositoryTest, ANonFastForwardPushIsRefusedAndTheBranchStays) {
  const std::string remote = Bare("shared");
  const std::string mine = Commit("mine", {{"a", "mine"}});
  ASSERT_TRUE(PushToBare(tmp_.Path("mine"), remote, "main").ok());
  Commit("theirs", {{"a", "theirs"}});
  const absl::Status pushed = PushToBare(tmp_.Path("theirs"), remote, "main");
  EXPECT_EQ(pushed.code(), absl::StatusCode::kFailedPrecondition) << pushed;
  EXPECT_THAT(std::string(pushed.message()), HasSubstr("cannot push"));
  EXPECT_EQ(BranchHead(remote, "main").value_or(""), mine);
}

TEST_F(LocalRepositoryTest, MissingRepositoriesAndBadInputsAreClearErrors) {
  Commit("work", {{"a", "a"}});
  EXPECT_EQ(PushToBare(tmp_.Path("work"), tmp_.Path("absent.git"), "main").code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(BranchHead(tmp_.Path("absent.git"), "main").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(PushToBare(tmp_.Path("work"), tmp_.Path("work"), "main").code(),
            absl::StatusCode::kFailedPrecondition)
      << "only into a bare repository";
  EXPECT_EQ(CommitAll(tmp_.Path("x"), "main", "m", {"", "a@b", absl::Now()}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CommitAll(tmp_.Path("x"), "main", "m", {"a", "a>b", absl::Now()}).status().code(),
            absl::StatusCode::kInvalidArgument);
  for (const std::string branch : {"", "-x", "a..b", "a b", "x.lock"}) {
    EXPECT_EQ(CommitAll(tmp_.Path("y"), branch, "m", kScaffolder).status().code(),
              absl::StatusCode::kInvalidArgument)
        << branch;
  }
  Bare("taken");
  EXPECT_EQ(InitBare(tmp_.Path("taken.git"), "main").code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(LocalRepositoryTest, TheHostsGitConfigurationIsNeverRead) {
  // A global config that would ignore every file and sign commits with a
  // key that does not exist.
  tmp_.Write("home/.gitconfig", "[core]\n\texcludesFile = " + tmp_.Path("home/ignore") +
                                    "\n[commit]\n\tgpgSign = true\n[user]\n\tname = Mallory\n");
  tmp_.Write("home/ignore", "*\n");
  const char* home = getenv("HOME");
  const std::string saved = home ? home : "";
  setenv("HOME", tmp_.Path("home").c_str(), 1);
  setenv("XDG_CONFIG_HOME", tmp_.Path("home").c_str(), 1);
  Commit("work", {{"a.txt", "a"}});
  if (home) setenv("HOME", saved.c_str(), 1);
  unsetenv("XDG_CONFIG_HOME");
  EXPECT_EQ(RunGit({"ls-files"}, tmp_.Path("work")).out, "a.txt\n");
  EXPECT_EQ(RunGit({"log", "-1", "--format=%an"}, tmp_.Path("work")).out, "Scaffolder\n");
}

}  // namespace
}  // namespace orchestrator::git
