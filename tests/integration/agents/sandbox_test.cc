// The bubblewrap sandbox a worker runs in, against the real bwrap: what the
// tree can see and touch, its environment and network, freezing and killing.
#include "services/agents/runtime/sandbox.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
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
using ::testing::HasSubstr;
using ::testing::Not;

class SandboxTest : public ::testing::Test {
 protected:
  SandboxTest() {
    char tmpl[] = "/tmp/sandbox_test.XXXXXX";
    dir_ = mkdtemp(tmpl);
    fs::create_directories(dir_ + "/ws");
    fs::create_directories(dir_ + "/home");
  }
  ~SandboxTest() override { fs::remove_all(dir_); }

  SandboxSpec Spec(const std::string& script) {
    SandboxSpec spec;
    spec.argv = {"/bin/sh", "-c", script};
    spec.workspace = dir_ + "/ws";
    spec.home = dir_ + "/home";
    spec.env = {{"PATH", "/usr/bin:/bin"}, {"HOME", "/home/agent"}};
    spec.log_path = dir_ + "/log";
    return spec;
  }

  // Runs the script to its end; returns what it printed.
  std::string Output(const SandboxSpec& spec) {
    auto sandbox = Sandbox::Start(spec);
    EXPECT_TRUE(sandbox.ok()) << sandbox.status();
    if (!sandbox.ok()) return "";
    auto status = (*sandbox)->Wait(absl::Seconds(20));
    EXPECT_TRUE(status.ok()) << status.status();
    std::ifstream in(spec.log_path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::string dir_;
};

TEST_F(SandboxTest, TheTreeCannotSeeHostProcesses) {
  const std::string out = Output(Spec("ls /proc | grep -c '^[0-9]'; cat /proc/1/comm"));
  int visible = 0;
  std::istringstream(out) >> visible;
  EXPECT_GE(visible, 1);
  EXPECT_LE(visible, 4) << out;  // bwrap's init, the shell, ls, grep: not the host's hundreds
  EXPECT_THAT(out, Not(HasSubstr("systemd")));
}

TEST_F(SandboxTest, WritesReachOnlyTheWorkspaceAndHome) {
  const std::string marker = absl::StrCat("sandbox-marker-", getpid());
  const std::string out = Output(Spec(absl::StrCat(
      "echo ws > /workspace/a; echo home > \"$HOME/h\"; echo tmp > /tmp/", marker,
      "; (echo usr > /usr/", marker, ") 2>/dev/null || echo usr-is-read-only; id -u")));
  EXPECT_TRUE(fs::exists(dir_ + "/ws/a"));
  EXPECT_TRUE(fs::exists(dir_ + "/home/h"));
  EXPECT_FALSE(fs::exists("/tmp/" + marker)) << "the sandbox's /tmp is private";
  EXPECT_FALSE(fs::exists("/usr/" + marker));
  EXPECT_THAT(out, HasSubstr("usr-is-read-only"));
  EXPECT_THAT(out, HasSubstr("1000\n"));  // not root inside
}

TEST_F(SandboxTest, TheEnvironmentIsOnlyWhatWasGiven) {
  setenv("ORCHESTRATOR_TEST_HOST_SECRET", "do-not-leak", 1);
  SandboxSpec spec = Spec("env");
  spec.env["GRANTED"] = "yes";
  const std::string out = Output(spec);
  unsetenv("ORCHESTRATOR_TEST_HOST_SECRET");
  EXPECT_THAT(out, HasSubstr("GRANTED=yes"));
  EXPECT_THAT(out, Not(HasSubstr("do-not-leak")));
  EXPECT_THAT(out, Not(HasSubstr("PGHOST")));
}

// Every process of the host with `needle` on its command line.
std::vector<pid_t> HostCommandLinesHolding(const std::string& needle) {
  std::vector<pid_t> found;
  for (const auto& e : fs::directory_iterator("/proc")) {
    int pid = 0;
    if (!absl::SimpleAtoi(e.path().filename().string(), &pid)) continue;
    std::ifstream in(e.path() / "cmdline");
    std::stringstream s;
    s << in.rdbuf();
    if (s.str().find(needle) != std::string::npos) found.push_back(pid);
  }
  return found;
}

TEST_F(SandboxTest, NoProcessInsideSeesTheHostEnvironment) {
  // bwrap's own process is the sandbox's pid 1: its /proc/1/environ is
  // what bwrap was started with.
  const std::string marker = absl::StrCat("host-secret-", getpid());
  setenv("PGPASSWORD", marker.c_str(), 1);
  SandboxSpec spec = Spec("for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f; done");
  spec.env["GRANTED"] = "yes";
  const std::string out = Output(spec);
  unsetenv("PGPASSWORD");
  EXPECT_THAT(out, HasSubstr("GRANTED=yes")) << "the probe read no environment at all";
  EXPECT_THAT(out, Not(HasSubstr(marker)));
  EXPECT_THAT(out, Not(HasSubstr("PGPASSWORD")));
}

TEST_F(SandboxTest, ItsEnvironmentIsOnNoCommandLineOfTheHost) {
  const std::string secret = absl::StrCat("orc_token-", getpid(), "-value");
  SandboxSpec spec = Spec("echo started; exec sleep 37");
  spec.env["ORCHESTRATOR_TOKEN"] = secret;
  auto sandbox = Sandbox::Start(spec);
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  // Once the sleep inside runs, every process of the tree exists.
  const std::string sleeper = std::string("sleep") + '\0' + "37" + '\0';
  auto sleeping = [&] {
    for (pid_t p : (*sandbox)->Processes()) {
      std::ifstream in(absl::StrCat("/proc/", p, "/cmdline"));
      std::stringstream s;
      s << in.rdbuf();
      if (s.str() == sleeper) return p;
    }
    return pid_t{0};
  };
  for (int i = 0; i < 500 && sleeping() == 0; ++i) absl::SleepFor(absl::Milliseconds(10));
  const pid_t inside = sleeping();
  ASSERT_NE(inside, 0);
  EXPECT_FALSE(HostCommandLinesHolding("bwrap").empty());
  EXPECT_THAT(HostCommandLinesHolding(secret), ::testing::IsEmpty());
  // It is in the environment of the process it was meant for.
  std::ifstream env(absl::StrCat("/proc/", inside, "/environ"));
  std::stringstream environments;
  environments << env.rdbuf();
  EXPECT_THAT(environments.str(), HasSubstr("ORCHESTRATOR_TOKEN=" + secret));
}

TEST_F(SandboxTest, ANulInTheEnvironmentCannotSmuggleInOptions) {
  // Through --args, "x\0--bind\0/\0/host" would mount the host's root.
  SandboxSpec spec = Spec("ls /host && echo ESCAPED");
  spec.env["SECRET"] = std::string("x\0--bind\0/\0/host", 17);
  auto sandbox = Sandbox::Start(spec);
  EXPECT_EQ(sandbox.status().code(), absl::StatusCode::kInvalidArgument);
  spec.env.clear();
  spec.env[std::string("K\0--bind", 8)] = "v";
  EXPECT_EQ(Sandbox::Start(spec).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SandboxTest, UsersAreTheSandboxsOwnNotTheHosts) {
  std::ifstream host_passwd("/etc/passwd");
  std::stringstream host;
  host << host_passwd.rdbuf();
  ASSERT_THAT(host.str(), HasSubstr("daemon:")) << "the check needs a host user besides root";
  const std::string out = Output(Spec("cat /etc/passwd /etc/group; echo \"~$(whoami)~$HOME~\""));
  EXPECT_THAT(out, HasSubstr("agent:x:1000:1000:agent:/home/agent:"));
  EXPECT_THAT(out, HasSubstr("agent:x:1000:"));
  EXPECT_THAT(out, HasSubstr("~agent~/home/agent~"));
  EXPECT_THAT(out, Not(HasSubstr("daemon:")));
}

TEST_F(SandboxTest, AnIsolatedSandboxHasNoNetworkAndAnOpenOneDoes) {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener, 8), 0);
  socklen_t len = sizeof(addr);
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string probe =
      absl::StrCat("bash -c 'exec 3<>/dev/tcp/127.0.0.1/", ntohs(addr.sin_port),
                   "' 2>/dev/null && echo connected || echo unreachable");

  SandboxSpec isolated = Spec(probe);
  isolated.isolate_network = true;
  EXPECT_THAT(Output(isolated), HasSubstr("unreachable"));
  fs::remove(dir_ + "/log");
  SandboxSpec open = Spec(probe);
  open.isolate_network = false;
  EXPECT_THAT(Output(open), HasSubstr("connected"));
  close(listener);
}

TEST_F(SandboxTest, FreezingStopsCpuUseAndThawingContinuesTheSameProcesses) {
  auto sandbox = Sandbox::Start(Spec("while :; do :; done"));
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  Sandbox& s = **sandbox;
  absl::SleepFor(absl::Milliseconds(300));
  const absl::Duration busy = s.CpuTime();
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_GT(s.CpuTime(), busy) << "the loop should be using CPU";

  ASSERT_TRUE(s.Freeze().ok());
  const auto frozen_pids = s.Processes();
  const absl::Duration at_freeze = s.CpuTime();
  absl::SleepFor(absl::Milliseconds(600));
  EXPECT_EQ(s.CpuTime(), at_freeze) << "a frozen sandbox used CPU";

  ASSERT_TRUE(s.Thaw().ok());
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_GT(s.CpuTime(), at_freeze);
  EXPECT_EQ(s.Processes(), frozen_pids) << "thawing should continue the same processes";
  EXPECT_TRUE(s.Running());
}

TEST_F(SandboxTest, KillEndsTheWholeTree) {
  auto sandbox = Sandbox::Start(Spec("sleep 100 & sleep 100 & wait"));
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  Sandbox& s = **sandbox;
  for (int i = 0; i < 100 && s.Processes().size() < 4; ++i) absl::SleepFor(absl::Milliseconds(10));
  const auto pids = s.Processes();
  ASSERT_GE(pids.size(), 3u);
  s.Kill();
  EXPECT_FALSE(s.Running());
  for (pid_t p : pids) {
    EXPECT_FALSE(fs::exists(absl::StrCat("/proc/", p))) << "pid " << p << " outlived the kill";
  }
}

TEST_F(SandboxTest, WhatCannotRunInsideFailsWithItsReasonInTheLog) {
  SandboxSpec spec = Spec("");
  spec.argv = {"/workspace/no-such-program"};
  auto sandbox = Sandbox::Start(spec);
  if (sandbox.ok()) {
    auto status = (*sandbox)->Wait(absl::Seconds(10));
    ASSERT_TRUE(status.ok());
    EXPECT_NE(*status, 0);
  }
  std::ifstream in(spec.log_path);
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_THAT(s.str(), HasSubstr("no-such-program"));
}

TEST_F(SandboxTest, ThePidsLimitHoldsTheWholeTree) {
  // Fork up to 40 sleepers; count those that got a process.
  SandboxSpec spec = Spec(
      "exec python3 -c 'import os, time\n"
      "n = 0\n"
      "for i in range(40):\n"
      "    try:\n"
      "        pid = os.fork()\n"
      "    except OSError:\n"
      "        break\n"
      "    if pid == 0:\n"
      "        time.sleep(2)\n"
      "        os._exit(0)\n"
      "    n += 1\n"
      "print(\"started=%d\" % n, flush=True)'");
  spec.cgroup = absl::StrCat("test-pids-", getpid());
  spec.max_pids = 12;
  const std::string out = Output(spec);
  int started = -1;
  const size_t at = out.rfind("started=");
  ASSERT_NE(at, std::string::npos) << out;
  ASSERT_EQ(std::sscanf(out.c_str() + at, "started=%d", &started), 1) << out;
  EXPECT_LT(started, 12) << out;  // not 40: the tree's pids are capped
  EXPECT_FALSE(fs::exists("/sys/fs/cgroup/pids/orchestrator/" + spec.cgroup))
      << "the tree's cgroup outlived it";
}

TEST_F(SandboxTest, TheCpuLimitCapsABusyLoop) {
  SandboxSpec spec = Spec("while :; do :; done");
  spec.cgroup = absl::StrCat("test-cpu-", getpid());
  spec.cpu_millis = 200;  // a fifth of a core
  auto sandbox = Sandbox::Start(spec);
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Duration before = (*sandbox)->CpuTime();
  absl::SleepFor(absl::Seconds(1));
  const absl::Duration used = (*sandbox)->CpuTime() - before;
  EXPECT_LE(used, absl::Milliseconds(350)) << "a fifth of a core for a second";
  EXPECT_GE(used, absl::Milliseconds(50));
}

TEST(BwrapCommandTest, IsolationFlagsFollowTheSpec) {
  SandboxSpec spec;
  spec.argv = {"/usr/bin/true"};
  spec.workspace = "/w";
  spec.home = "/h";
  spec.env = {{"A", "1"}};
  spec.mounts = {{"/srv/runner", "/opt/runner", false}, {"/run/mesh", "", true}};
  auto has = [](const std::vector<std::string>& a, std::vector<std::string> seq) {
    return std::search(a.begin(), a.end(), seq.begin(), seq.end()) != a.end();
  };
  auto isolated = BwrapCommand("/usr/bin/bwrap", spec);
  EXPECT_TRUE(has(isolated, {"--unshare-net"}));
  EXPECT_TRUE(has(isolated, {"--clearenv", "--args", "4"}));
  EXPECT_FALSE(has(isolated, {"--setenv"})) << "values belong in the --args descriptor";
  EXPECT_EQ(BwrapEnvArguments(spec), std::string("--setenv") + '\0' + "A" + '\0' + "1" + '\0');
  EXPECT_TRUE(has(isolated, {"--ro-bind", "/usr", "/usr"}));
  EXPECT_TRUE(has(isolated, {"--bind", "/w", "/workspace"}));
  EXPECT_TRUE(has(isolated, {"--ro-bind", "/srv/runner", "/opt/runner"}));
  EXPECT_TRUE(has(isolated, {"--bind", "/run/mesh", "/run/mesh"}));
  EXPECT_TRUE(has(isolated, {"--", "/usr/bin/true"}));
  spec.isolate_network = false;
  EXPECT_FALSE(has(BwrapCommand("/usr/bin/bwrap", spec), {"--unshare-net"}));
}

}  // namespace
}  // namespace orchestrator::agents
