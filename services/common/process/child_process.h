#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace orchestrator {

// How a child process ended.
struct ChildExit {
  int exit_code = -1;       // when it exited
  int signal = 0;           // when a signal ended it
  bool timed_out = false;   // killed at the deadline
  bool cancelled = false;   // killed because `cancel` became true
  std::string stderr_tail;  // its last standard-error bytes
};

// What to run and how (see RunChild).
struct ChildCommand {
  std::vector<std::string> argv;  // PATH (of the child's environment) is searched
  // Added to this process's environment, or with `inherit_environment`
  // false the child's whole environment (nothing of the host's leaks in).
  std::map<std::string, std::string> env;
  bool inherit_environment = true;
  std::string cwd;  // "" for this process's
  // The child's standard input: these bytes (then end of file), or
  // `stdin_fd` (duplicated, left open) when it is >= 0, else /dev/null.
  std::optional<std::string> stdin_bytes;
  int stdin_fd = -1;
  // Standard output as lines (without "\n" or "\r"; empty lines skipped) or,
  // when `on_output` is set, as the bytes come (for binary output).
  std::function<void(const std::string& line)> on_line;
  std::function<void(absl::string_view bytes)> on_output;
  // Standard error as the bytes come (its tail is kept as well), or, with
  // `stderr_to_stdout`, onto standard output (nothing to keep).
  std::function<void(absl::string_view bytes)> on_stderr;
  bool stderr_to_stdout = false;
  absl::Time deadline = absl::InfiniteFuture();
  const std::atomic<bool>* cancel = nullptr;
  size_t stderr_bytes = 8192;  // how much of the end of standard error to keep
  std::function<void()> after_exit;
};

// Runs `command.argv` in its own process group; calls `on_line` or
// `on_output` with its standard output as it comes; keeps the last
// `stderr_bytes` of its standard error. Kills the whole group at `deadline`
// or when `*cancel` turns true. Once it has exited, its group is killed and
// `after_exit` (if set) runs; output that processes outside the group
// (started with setsid) keep writing is read for at most two more seconds,
// so such a process cannot hold the call open.
absl::StatusOr<ChildExit> RunChild(const ChildCommand& command);

// The same, for a child that inherits this process's environment (with `env`
// on top) and reads nothing.
absl::StatusOr<ChildExit> RunChild(const std::vector<std::string>& argv,
                                   const std::map<std::string, std::string>& env,
                                   const std::string& cwd,
                                   const std::function<void(const std::string& line)>& on_line,
                                   absl::Time deadline, const std::atomic<bool>* cancel,
                                   size_t stderr_bytes = 8192,
                                   const std::function<void()>& after_exit = nullptr);

// Makes this process the reaper of its orphaned descendants
// (PR_SET_CHILD_SUBREAPER): whatever a child starts and detaches (nohup,
// setsid, a double fork) stays a descendant of this process, so
// KillDescendants finds it.
absl::Status BecomeSubreaper();

// Kills every descendant of this process except the processes in `keep`
// and theirs, again until none is left (they may fork meanwhile, for about
// a second at most), and reaps those that were its children. Returns how
// many processes it killed.
int KillDescendants(const std::set<pid_t>& keep = {});

}  // namespace orchestrator
