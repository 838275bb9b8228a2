// What an agent leaves running when its turn ends, and what git is run
// with (its input, an environment of its own): RunChild and KillDescendants
// against real processes.
#include "services/common/process/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace orchestrator {
namespace {

namespace fs = std::filesystem;

// Processes whose command line is exactly `sleep SECONDS`.
int Sleepers(const std::string& seconds) {
  const std::string wanted = std::string("sleep") + '\0' + seconds + '\0';
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    int pid = 0;
    if (!absl::SimpleAtoi(e.path().filename().string(), &pid)) continue;
    std::ifstream in(e.path() / "cmdline");
    std::stringstream s;
    s << in.rdbuf();
    if (s.str() == wanted) ++n;
  }
  return n;
}

TEST(ChildProcessTest, DetachedBackgroundProcessesEndWithTheChildAndCannotHoldItOpen) {
  ASSERT_TRUE(BecomeSubreaper().ok());
  const std::string seconds = absl::StrCat(2000 + getpid() % 1000);
  // One keeps the child's output open from a session of its own; one is
  // double-forked into another session with nohup.
  // (The child ends once both run: a group kill before their setsid would
  // end them too early for the test.)
  const std::string script =
      absl::StrCat("setsid sleep ", seconds, " & (nohup setsid sleep ", seconds,
                   " >/dev/null 2>&1 &); ", "until [ \"$(pgrep -c -x -f 'sleep ", seconds,
                   "')\" -ge 2 ]; do sleep 0.01; done; ", "echo started");
  int alive_at_exit = -1;
  std::string output;
  const absl::Time start = absl::Now();
  auto exit = RunChild(
      {"/bin/sh", "-c", script}, {}, "", [&](const std::string& line) { output += line; },
      absl::Now() + absl::Seconds(30), nullptr, 8192,
      [&] {
        // Both are running when the child has exited.
        for (int i = 0; i < 200 && Sleepers(seconds) < 2; ++i)
          absl::SleepFor(absl::Milliseconds(5));
        alive_at_exit = Sleepers(seconds);
        KillDescendants();
      });
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->exit_code, 0);
  EXPECT_EQ(output, "started");
  EXPECT_EQ(alive_at_exit, 2);
  EXPECT_EQ(Sleepers(seconds), 0) << "a background process outlived its turn";
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST(ChildProcessTest, AProcessOutsideTheGroupCannotHoldTheCallOpen) {
  const std::string seconds = absl::StrCat(3000 + getpid() % 1000);
  const absl::Time start = absl::Now();
  auto exit = RunChild({"/bin/sh", "-c", absl::StrCat("setsid sleep ", seconds, " & echo done")},
                       {}, "", nullptr, absl::Now() + absl::Seconds(60), nullptr);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5)) << "its open output held the call";
  KillDescendants();  // not the point here: what this test left behind
}

TEST(ChildProcessTest, KillDescendantsSparesTheKeptOnesAndTheCaller) {
  ASSERT_TRUE(BecomeSubreaper().ok());
  const pid_t kept = fork();
  if (kept == 0) {
    execl("/bin/sleep", "sleep", "30", nullptr);
    _exit(127);
  }
  const pid_t doomed = fork();
  if (doomed == 0) {
    execl("/bin/sleep", "sleep", "30", nullptr);
    _exit(127);
  }
  EXPECT_EQ(KillDescendants({kept}), 1);
  EXPECT_EQ(kill(doomed, 0), -1) << "killed and reaped";
  EXPECT_EQ(kill(kept, 0), 0);
  kill(kept, SIGKILL);
  waitpid(kept, nullptr, 0);
}

TEST(ChildProcessTest, TheChildGetsNoneOfOurOtherDescriptors) {
  // Opened without O_CLOEXEC, as a library's socket may be.
  const int leaked = open("/dev/null", O_RDONLY);
  ASSERT_GE(leaked, 3);
  ChildCommand command;
  command.argv = {"/bin/sh", "-c", absl::StrCat("test -e /proc/self/fd/", leaked)};
  command.deadline = absl::Now() + absl::Seconds(10);
  auto exit = RunChild(command);
  close(leaked);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->exit_code, 1) << "descriptor " << leaked << " reached the child";
}

TEST(ChildProcessTest, StdinBytesReachTheChildAndItsEnvironmentCanBeItsOwn) {
  setenv("ORCHESTRATOR_TEST_HOST_SECRET", "leaked", 1);
  ChildCommand command;
  command.argv = {"sh", "-c", "cat; echo; env"};
  command.env = {{"PATH", "/usr/bin:/bin"}, {"ONLY", "this"}};
  command.inherit_environment = false;
  command.stdin_bytes = "hello";
  std::string out;
  command.on_line = [&](const std::string& line) { out += line + "\n"; };
  command.deadline = absl::Now() + absl::Seconds(30);
  auto exit = RunChild(command);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->exit_code, 0);
  EXPECT_THAT(out, ::testing::StartsWith("hello\n"));
  EXPECT_THAT(out, ::testing::HasSubstr("ONLY=this\n"));
  EXPECT_THAT(out, ::testing::Not(::testing::HasSubstr("ORCHESTRATOR_TEST_HOST_SECRET")));
  // Inherited, as before.
  command.inherit_environment = true;
  out.clear();
  ASSERT_TRUE(RunChild(command).ok());
  EXPECT_THAT(out, ::testing::HasSubstr("ORCHESTRATOR_TEST_HOST_SECRET=leaked"));
  unsetenv("ORCHESTRATOR_TEST_HOST_SECRET");
}

TEST(ChildProcessTest, LargeInputAndOutputAtOnceDoNotDeadlock) {
  const std::string input(8 << 20, 'x');
  ChildCommand command;
  command.argv = {"cat"};
  command.stdin_bytes = input;
  size_t received = 0;
  bool all_x = true;
  command.on_output = [&](absl::string_view bytes) {
    received += bytes.size();
    all_x = all_x && bytes.find_first_not_of('x') == absl::string_view::npos;
  };
  command.deadline = absl::Now() + absl::Seconds(60);
  auto exit = RunChild(command);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->exit_code, 0);
  EXPECT_EQ(received, input.size());
  EXPECT_TRUE(all_x) << "binary output arrives as it was written";
}

TEST(ChildProcessTest, AChildThatStopsReadingItsInputEndsNormally) {
  ChildCommand command;
  command.argv = {"head", "-c", "3"};
  command.stdin_bytes = std::string(8 << 20, 'y');
  std::string out;
  command.on_output = [&](absl::string_view bytes) { out.append(bytes.data(), bytes.size()); };
  command.deadline = absl::Now() + absl::Seconds(30);
  auto exit = RunChild(command);  // a SIGPIPE here would end this test binary
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->exit_code, 0);
  EXPECT_EQ(out, "yyy");
}

TEST(ChildProcessTest, StdinCanBeADescriptorAndPathIsTheChildsOwn) {
  testing::TempDir tmp;
  const std::string input = tmp.Write("input.txt", "from a file\n");
  tmp.Write("bin/greet", "#!/bin/sh\nsed 's/^/greet: /'\n");
  std::filesystem::permissions(tmp.Path("bin/greet"), std::filesystem::perms::owner_all);
  const int fd = open(input.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ChildCommand command;
  command.argv = {"greet"};  // found on the child's PATH, not ours
  command.env = {{"PATH", tmp.Path("bin") + ":/usr/bin:/bin"}};
  command.inherit_environment = false;
  command.stdin_fd = fd;
  std::string out;
  command.on_line = [&](const std::string& line) { out += line; };
  command.deadline = absl::Now() + absl::Seconds(30);
  absl::StatusOr<ChildExit> exit = RunChild(command);
  close(fd);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->exit_code, 0) << exit->stderr_tail;
  EXPECT_EQ(out, "greet: from a file");
  // A script without "#!" runs under /bin/sh.
  tmp.Write("bin/plain", "echo plain script\n");
  std::filesystem::permissions(tmp.Path("bin/plain"), std::filesystem::perms::owner_all);
  command.argv = {"plain"};
  command.stdin_fd = -1;  // closed above
  out.clear();
  exit = RunChild(command);
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(out, "plain script");
  command.argv = {"no-such-program-here"};
  exit = RunChild(command);
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->exit_code, 127);
  EXPECT_THAT(exit->stderr_tail, ::testing::HasSubstr("no-such-program-here: No such file"));
}

}  // namespace
}  // namespace orchestrator
