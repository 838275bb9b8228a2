#include "services/agents/runner/child_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

extern char** environ;

namespace orchestrator::agents {

absl::StatusOr<ChildExit> RunChild(const std::vector<std::string>& argv,
                                   const std::map<std::string, std::string>& env,
                                   const std::string& cwd,
                                   const std::function<void(const std::string&)>& on_line,
                                   absl::Time deadline, const std::atomic<bool>* cancel,
                                   size_t stderr_bytes, const std::function<void()>& after_exit) {
  if (argv.empty()) return absl::InvalidArgumentError("nothing to run");
  // The child's environment: ours, with `env` on top.
  std::map<std::string, std::string> merged;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    const size_t eq = kv.find('=');
    if (eq != std::string::npos) merged[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : env) merged[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : merged) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);

  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return absl::InternalError("pipe failed");
  }
  const pid_t child = fork();
  if (child < 0) return absl::ResourceExhaustedError("fork failed");
  if (child == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    execvpe(args[0], args.data(), envp.data());
    const std::string msg = absl::StrCat(argv[0], ": ", strerror(errno), "\n");
    (void)!write(2, msg.data(), msg.size());
    _exit(127);
  }
  setpgid(child, child);
  close(out[1]);
  close(err[1]);

  ChildExit result;
  std::string line_buf;
  bool out_open = true, err_open = true;
  char buf[65536];
  auto kill_group = [&] {
    kill(-child, SIGKILL);
    kill(child, SIGKILL);
  };
  bool killed = false, reaped = false;
  int status = 0;
  absl::Time drained_by = absl::InfiniteFuture();
  while (out_open || err_open) {
    // The agent is done: whatever it left behind in its group goes too, so
    // that its pipes close.
    if (!reaped && waitpid(child, &status, WNOHANG) == child) {
      reaped = true;
      kill(-child, SIGKILL);
      if (after_exit) after_exit();
      drained_by = absl::Now() + absl::Seconds(2);
    }
    if (absl::Now() >= drained_by) break;  // held open by a process that left the group
    if (!killed) {
      if (cancel != nullptr && cancel->load()) {
        result.cancelled = true;
        kill_group();
        killed = true;
      } else if (absl::Now() >= deadline) {
        result.timed_out = true;
        kill_group();
        killed = true;
      }
    }
    pollfd fds[2] = {{out_open ? out[0] : -1, POLLIN, 0}, {err_open ? err[0] : -1, POLLIN, 0}};
    const int ready = poll(fds, 2, 50);
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    if (out_open && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      const ssize_t n = read(out[0], buf, sizeof(buf));
      if (n <= 0) {
        out_open = false;
      } else {
        line_buf.append(buf, static_cast<size_t>(n));
        size_t nl;
        while ((nl = line_buf.find('\n')) != std::string::npos) {
          std::string line = line_buf.substr(0, nl);
          line_buf.erase(0, nl + 1);
          if (!line.empty() && line.back() == '\r') line.pop_back();
          if (on_line && !line.empty()) on_line(line);
        }
      }
    }
    if (err_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      const ssize_t n = read(err[0], buf, sizeof(buf));
      if (n <= 0) {
        err_open = false;
      } else {
        result.stderr_tail.append(buf, static_cast<size_t>(n));
        if (result.stderr_tail.size() > stderr_bytes) {
          result.stderr_tail.erase(0, result.stderr_tail.size() - stderr_bytes);
        }
      }
    }
  }
  if (on_line && !line_buf.empty()) on_line(line_buf);
  close(out[0]);
  close(err[0]);
  while (!reaped && waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  kill(-child, SIGKILL);  // anything the agent left running in its group
  if (!reaped && after_exit) after_exit();
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

absl::Status BecomeSubreaper() {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    return absl::InternalError(absl::StrCat("prctl(PR_SET_CHILD_SUBREAPER): ", strerror(errno)));
  }
  return absl::OkStatus();
}

namespace {

struct ProcessInfo {
  pid_t parent = 0;
  char state = '?';
};

// Every process this process can see: its parent and state.
std::map<pid_t, ProcessInfo> Processes() {
  std::map<pid_t, ProcessInfo> all;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return all;
  while (dirent* e = readdir(proc)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
    std::string line;
    std::getline(in, line);
    // "pid (comm) S ppid …": the command may hold spaces and parentheses.
    const size_t close = line.rfind(')');
    if (close == std::string::npos || close + 4 >= line.size()) continue;
    ProcessInfo info;
    info.state = line[close + 2];
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(line).substr(
                              close + 4, line.find(' ', close + 4) - (close + 4))),
                          &info.parent)) {
      continue;
    }
    all[pid] = info;
  }
  closedir(proc);
  return all;
}

}  // namespace

int KillDescendants(const std::set<pid_t>& keep) {
  const pid_t self = getpid();
  std::set<pid_t> killed;
  for (int pass = 0; pass < 200; ++pass) {
    const auto all = Processes();
    std::vector<pid_t> found;
    for (const auto& [pid, info] : all) {
      // A descendant: its chain of parents reaches this process without
      // passing a kept one.
      bool descendant = false;
      pid_t at = pid;
      for (int depth = 0; depth < 1024 && at > 1 && !keep.contains(at); ++depth) {
        auto it = all.find(at);
        if (it == all.end()) break;
        if (it->second.parent == self) {
          descendant = true;
          break;
        }
        at = it->second.parent;
      }
      if (descendant && at > 1 && !keep.contains(at)) found.push_back(pid);
    }
    if (found.empty()) break;
    for (pid_t pid : found) {
      const ProcessInfo& info = all.at(pid);
      if (info.state != 'Z' && info.state != 'X') {
        kill(pid, SIGKILL);
        killed.insert(pid);
      }
      // Ours now (orphans come to us): reap it once it is gone.
      if (info.parent == self) waitpid(pid, nullptr, WNOHANG);
    }
    usleep(5000);
  }
  return static_cast<int>(killed.size());
}

}  // namespace orchestrator::agents
