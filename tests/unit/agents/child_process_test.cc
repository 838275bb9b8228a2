// What an agent leaves running when its turn ends: RunChild and
// KillDescendants against real processes.
#include "services/agents/runner/child_process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace orchestrator::agents {
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

}  // namespace
}  // namespace orchestrator::agents
