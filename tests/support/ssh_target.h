#pragma once

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/support/free_port.h"
#include "tests/support/temp_dir.h"

#ifndef PROJECT_SOURCE_DIR
#error "a test that includes tests/support/ssh_target.h defines PROJECT_SOURCE_DIR"
#endif

namespace orchestrator::testing {

// A shell command's exit code and standard output (standard error joined).
struct ShellResult {
  int code = -1;
  std::string out;
};
inline ShellResult Shell(const std::string& command) {
  ShellResult ran;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return ran;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) ran.out.append(buffer.data(), n);
  const int status = pclose(pipe);
  ran.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return ran;
}

// `podman <args>` as a shell command, with the settings this machine needs
// (tools/image/containers.conf).
inline std::string PodmanCommand(const std::string& args) {
  return absl::StrCat("CONTAINERS_CONF=", PROJECT_SOURCE_DIR,
                      "/tools/image/containers.conf podman ", args);
}

// An sshd in a Podman container (the image tools/image/base-images
// ssh-target makes) that `ops`, who may sudo, logs in to with a key of the
// test's.
class SshTarget final {
 public:
  static constexpr char kImage[] = "localhost/orchestrator-ssh-target:bookworm";
  static constexpr char kUser[] = "ops";

  struct Options {
    // On the host's network, sshd on 127.0.0.1:<a free port below the
    // ephemeral ones>, so that the server's loopback is the host's; else
    // its port 22 is published on a loopback port.
    bool host_network = false;
    // Bind mounts: {path on the host, path in the container}.
    std::vector<std::pair<std::string, std::string>> mounts;
  };

  // Why SshTargets cannot run here ("" when they can).
  static std::string MissingPrerequisite() {
    if (geteuid() != 0) return "these tests run containers with rootful Podman: run them as root";
    if (Shell("command -v ssh").code != 0) return "ssh is missing: tools/setup";
    if (Shell(PodmanCommand(absl::StrCat("image exists ", kImage))).code != 0) {
      return absl::StrCat("the image ", kImage,
                          " is missing: tools/image/base-images ssh-target (tools/setup makes it)");
    }
    return "";
  }

  // Its login key and setup script go into `dir`.
  explicit SshTarget(const TempDir& dir) : SshTarget(dir, Options()) {}
  SshTarget(const TempDir& dir, const Options& options)
      : key_(dir.Path(absl::StrCat("login-", ++count_))),
        name_(absl::StrCat("orch-ssh-target-", getpid(), "-", count_)),
        port_(options.host_network ? FreePortBelowEphemeral() : FreePort()) {
    Shell(absl::StrCat("ssh-keygen -q -t ed25519 -N '' -C test -f ", key_));
    const std::string sshd =
        options.host_network ? absl::StrCat(" -p ", port_, " -o ListenAddress=127.0.0.1") : "";
    const std::string setup = dir.Write(
        absl::StrCat("setup-", count_, ".sh"),
        absl::StrCat(
            "set -e\nmkdir -p /run/sshd\nuseradd --create-home --shell /bin/bash ops\n"
            "mkdir -p /home/ops/.ssh\nprintf '%s\\n' \"$LOGIN_KEY\" > "
            "/home/ops/.ssh/authorized_keys\n"
            "chown -R ops: /home/ops/.ssh\nchmod 700 /home/ops/.ssh\n"
            "echo 'ops ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/ops\nexec /usr/sbin/sshd -D -e",
            sshd, "\n"));
    std::string network =
        options.host_network ? "--network host" : absl::StrCat("-p 127.0.0.1:", port_, ":22");
    for (const auto& [host, container] : options.mounts) {
      absl::StrAppend(&network, " -v ", host, ":", container);
    }
    started_ = Shell(PodmanCommand(absl::StrCat("run -d --rm --name ", name_, " ", network, " -v ",
                                                setup, ":/setup.sh:ro -e LOGIN_KEY=\"$(cat ", key_,
                                                ".pub)\" ", kImage, " /bin/sh /setup.sh")));
    for (int i = 0; i < 100 && Ssh("true").code != 0; ++i) absl::SleepFor(absl::Milliseconds(100));
  }
  ~SshTarget() { Shell(PodmanCommand(absl::StrCat("rm -f -t 0 ", name_))); }
  SshTarget(const SshTarget&) = delete;
  SshTarget& operator=(const SshTarget&) = delete;

  // Runs `command` on it as ops.
  ShellResult Ssh(const std::string& command) const {
    return Shell(absl::StrCat("ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no ",
                              "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -i ", key_, " -p ",
                              port_, " ops@127.0.0.1 ", command));
  }
  // Runs `command` in the container as root.
  ShellResult Exec(const std::string& command) const {
    return Shell(PodmanCommand(absl::StrCat("exec ", name_, " sh -c '", command, "'")));
  }
  // Kills it (sshd with it).
  void Stop() const { Shell(PodmanCommand(absl::StrCat("stop -t 0 ", name_))); }
  // Freezes it and lets it go on: a server that no longer answers, its
  // connections left open.
  ShellResult Pause() const { return Shell(PodmanCommand(absl::StrCat("pause ", name_))); }
  void Unpause() const { Shell(PodmanCommand(absl::StrCat("unpause ", name_))); }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  int port() const { return port_; }
  std::string private_key() const { return ReadFile(key_); }
  const ShellResult& started() const { return started_; }

 private:
  static inline int count_ = 0;
  const std::string key_;
  const std::string name_;
  const int port_;
  ShellResult started_;
};

// The command lines of this machine's ssh processes (arguments split),
// by pid.
inline std::vector<std::pair<pid_t, std::vector<std::string>>> SshProcesses() {
  std::vector<std::pair<pid_t, std::vector<std::string>>> found;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return found;
  while (dirent* e = readdir(proc)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    const std::string cmdline = ReadFile(absl::StrCat("/proc/", pid, "/cmdline"));
    std::vector<std::string> args = absl::StrSplit(cmdline, '\0', absl::SkipEmpty());
    if (args.empty() || (args[0] != "ssh" && !absl::EndsWith(args[0], "/ssh"))) continue;
    found.emplace_back(pid, std::move(args));
  }
  closedir(proc);
  return found;
}

// Kills this machine's ssh processes that log in to 127.0.0.1:`port` (the
// tunnels to an SshTarget); whether there was one.
inline bool KillTunnels(int port) {
  bool killed = false;
  for (const auto& [pid, args] : SshProcesses()) {
    for (size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == "-p" && args[i + 1] == std::to_string(port)) {
        killed |= kill(pid, SIGKILL) == 0;
        break;
      }
    }
  }
  return killed;
}

}  // namespace orchestrator::testing
