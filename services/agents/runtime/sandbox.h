#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace orchestrator::agents {

// A host path (a directory or a single file) made visible inside the
// sandbox at `target` (same path when empty), read-only unless `writable`.
struct Mount {
  std::string source;
  std::string target;
  bool writable = false;
};

// What a worker's sandbox is: one process tree in its own pid, ipc and uts
// (and optionally network) namespaces, as an unprivileged user (uid 1000,
// "agent"), seeing a read-only system with an /etc/passwd and /etc/group of
// its own (root and agent only), its workspace at /workspace and its own
// HOME, and nothing of the host's environment but `env`: bwrap itself starts
// with an empty environment, and `env` reaches it through a file descriptor
// (--args), never its command line, so no value of `env` (tokens, keys,
// granted secrets) is in any process's /proc/<pid>/cmdline.
struct SandboxSpec {
  std::vector<std::string> argv;           // run inside
  std::string workspace;                   // host directory → /workspace (writable)
  std::string home;                        // host directory → /home/agent (writable)
  std::vector<Mount> mounts;               // the runner, agent CLIs, the mesh's socket
  std::map<std::string, std::string> env;  // the entire environment
  bool isolate_network = true;             // own network namespace: only loopback
  // Limits of the whole tree, 0 = none. Enforced with cgroups (v1: memory,
  // pids, cpu) under /sys/fs/cgroup/<controller>/orchestrator/<cgroup>; a
  // controller that is not writable is logged and left out.
  std::string cgroup;  // the tree's cgroup name (a worker id)
  int64_t memory_bytes = 0;
  int64_t max_pids = 0;
  int64_t cpu_millis = 0;  // thousandths of a core
  std::string hostname = "worker";
  std::string log_path;  // stdout and stderr of the tree (host path); empty = /dev/null
  // No bubblewrap: argv runs as a plain process in its own session, in
  // `workspace`, with `env` only (mounts and isolation do not apply). Only
  // when chosen explicitly.
  bool unsandboxed = false;
};

// The bwrap command line for `spec` (bwrap path first). It holds no value
// of `spec.env`: bwrap reads those from descriptor 4 (see BwrapEnvArguments),
// the generated /etc/passwd and /etc/group from 5 and 6.
std::vector<std::string> BwrapCommand(const std::string& bwrap, const SandboxSpec& spec);

// What bwrap reads from descriptor 4 (--args): `spec.env` as NUL-separated
// --setenv arguments.
std::string BwrapEnvArguments(const SandboxSpec& spec);

// The sandbox's own /etc/passwd and /etc/group: root and the agent user
// (uid and gid 1000, HOME /home/agent), nothing of the host's.
std::string SandboxPasswd();
std::string SandboxGroup();

// Removes the cgroups a sandbox named `cgroup` left when its process
// died without cleaning up (e.g. orchestratord was SIGKILLed).
void RemoveCgroups(const std::string& cgroup);

// bwrap's path, or FAILED_PRECONDITION saying how to get it.
absl::StatusOr<std::string> FindBwrap();

// A running sandbox. Destroying it kills the whole tree.
class Sandbox {
 public:
  static absl::StatusOr<std::unique_ptr<Sandbox>> Start(const SandboxSpec& spec);
  ~Sandbox();

  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  // The tree's first process (pid 1 inside), as the host sees it.
  pid_t pid() const { return init_pid_; }
  // The host pids of every process in the sandbox now.
  std::vector<pid_t> Processes() const;
  // True until the tree's first process has exited.
  bool Running();
  // Waits up to `timeout` for the tree to end; its exit status (as
  // waitpid's), or DEADLINE_EXCEEDED.
  absl::StatusOr<int> Wait(absl::Duration timeout);

  // Stops every process of the tree (SIGSTOP, repeated until none runs);
  // they use no CPU until Thaw.
  absl::Status Freeze();
  absl::Status Thaw();
  // Kills the tree at once (all of it: the pid namespace ends with its
  // first process).
  void Kill();

  // CPU time the tree's processes have used (user + system), for checks.
  absl::Duration CpuTime() const;

 private:
  static absl::StatusOr<std::unique_ptr<Sandbox>> StartUnsandboxed(const SandboxSpec& spec);
  Sandbox(pid_t bwrap_pid, pid_t init_pid, uint64_t pid_namespace)
      : bwrap_pid_(bwrap_pid), init_pid_(init_pid), pid_namespace_(pid_namespace) {}

  pid_t bwrap_pid_;
  pid_t init_pid_;
  std::vector<std::string> cgroups_;  // created for the tree, removed after it
  uint64_t pid_namespace_;            // 0: unsandboxed, the tree is init_pid_'s session
  bool reaped_ = false;
  int status_ = 0;
};

}  // namespace orchestrator::agents
