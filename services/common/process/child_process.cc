#include "services/common/process/child_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

extern char** environ;

namespace orchestrator {
namespace {

// `program` as execve needs it: a name without a slash is looked up in
// `path` (the child's PATH, not ours); what is not found is left as it is
// and fails in the child with ENOENT.
std::string FindProgram(const std::string& program, const std::string& path) {
  if (program.find('/') != std::string::npos) return program;
  for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", program);
    struct stat st;
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return program;
}

// Writes to `fd` (a pipe the child reads) without letting a child that has
// stopped reading raise SIGPIPE in this process: the signal is blocked in
// this thread for the write and taken back if the write raised it.
ssize_t WriteToChild(int fd, const char* data, size_t size) {
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  const ssize_t n = write(fd, data, size);
  const int saved = errno;
  if (n < 0 && saved == EPIPE) {
    const timespec now{0, 0};
    while (sigtimedwait(&pipe_only, nullptr, &now) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  return n;
}

void ClosePair(int fds[2]) {
  if (fds[0] >= 0) close(fds[0]);
  if (fds[1] >= 0) close(fds[1]);
}

}  // namespace

absl::StatusOr<ChildExit> RunChild(const ChildCommand& command) {
  if (command.argv.empty()) return absl::InvalidArgumentError("nothing to run");
  // The child's environment: ours with `env` on top, or `env` alone.
  std::map<std::string, std::string> merged;
  if (command.inherit_environment) {
    for (char** e = environ; *e != nullptr; ++e) {
      std::string kv = *e;
      const size_t eq = kv.find('=');
      if (eq != std::string::npos) merged[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  for (const auto& [k, v] : command.env) merged[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : merged) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = command.argv;
  for (auto& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);
  auto path = merged.find("PATH");
  const std::string program =
      FindProgram(command.argv[0], path == merged.end() ? "/usr/bin:/bin" : path->second);
  // Prepared before fork: the child of a threaded process may not allocate.
  const std::string exec_failed = absl::StrCat(command.argv[0], ": ");
  // A script without a "#!" line runs under /bin/sh, as execvp would.
  std::string sh = "/bin/sh", program_arg = program;
  std::vector<char*> sh_args = {sh.data(), program_arg.data()};
  sh_args.insert(sh_args.end(), args.begin() + 1, args.end());

  int out[2] = {-1, -1}, err[2] = {-1, -1}, in[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  if (pipe2(err, O_CLOEXEC) != 0) {
    ClosePair(out);
    return absl::InternalError("pipe failed");
  }
  const bool feed = command.stdin_bytes.has_value() && command.stdin_fd < 0;
  if (feed && pipe2(in, O_CLOEXEC) != 0) {
    ClosePair(out);
    ClosePair(err);
    return absl::InternalError("pipe failed");
  }
  const pid_t child = fork();
  if (child < 0) {
    ClosePair(out);
    ClosePair(err);
    ClosePair(in);
    return absl::ResourceExhaustedError("fork failed");
  }
  if (child == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    const int input = feed                    ? in[0]
                      : command.stdin_fd >= 0 ? command.stdin_fd
                                              : open("/dev/null", O_RDONLY);
    dup2(input, 0);
    dup2(out[1], 1);
    dup2(command.stderr_to_stdout ? out[1] : err[1], 2);
    // Nothing else of ours: descriptors opened without O_CLOEXEC (e.g. a
    // server's listening socket) would outlive us in what it starts.
    close_range(3, ~0U, 0);
    if (!command.cwd.empty() && chdir(command.cwd.c_str()) != 0) _exit(126);
    execve(program.c_str(), args.data(), envp.data());
    if (errno == ENOEXEC) execve(sh.c_str(), sh_args.data(), envp.data());
    const char* reason = strerror(errno);
    (void)!write(2, exec_failed.data(), exec_failed.size());
    (void)!write(2, reason, strlen(reason));
    (void)!write(2, "\n", 1);
    _exit(127);
  }
  setpgid(child, child);
  close(out[1]);
  close(err[1]);
  int stdin_w = -1;
  size_t stdin_written = 0;
  if (feed) {
    close(in[0]);
    stdin_w = in[1];
    fcntl(stdin_w, F_SETFL, fcntl(stdin_w, F_GETFL) | O_NONBLOCK);
    if (command.stdin_bytes->empty()) {
      close(stdin_w);
      stdin_w = -1;
    }
  }
  auto close_stdin = [&] {
    if (stdin_w >= 0) close(stdin_w);
    stdin_w = -1;
  };

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
    // The child is done: whatever it left behind in its group goes too, so
    // that its pipes close.
    if (!reaped && waitpid(child, &status, WNOHANG) == child) {
      reaped = true;
      kill(-child, SIGKILL);
      close_stdin();
      if (command.after_exit) command.after_exit();
      drained_by = absl::Now() + absl::Seconds(2);
    }
    if (absl::Now() >= drained_by) break;  // held open by a process that left the group
    if (!killed) {
      if (command.cancel != nullptr && command.cancel->load()) {
        result.cancelled = true;
        kill_group();
        killed = true;
      } else if (absl::Now() >= command.deadline) {
        result.timed_out = true;
        kill_group();
        killed = true;
      }
    }
    pollfd fds[3] = {{out_open ? out[0] : -1, POLLIN, 0},
                     {err_open ? err[0] : -1, POLLIN, 0},
                     {stdin_w, POLLOUT, 0}};
    const int ready = poll(fds, 3, 50);
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    if (stdin_w >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const std::string& bytes = *command.stdin_bytes;
      const ssize_t n = WriteToChild(stdin_w, bytes.data() + stdin_written,
                                     std::min<size_t>(bytes.size() - stdin_written, 1 << 16));
      if (n > 0) stdin_written += static_cast<size_t>(n);
      // Everything written, or the child stopped reading.
      if (stdin_written == bytes.size() || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        close_stdin();
      }
    }
    if (out_open && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      const ssize_t n = read(out[0], buf, sizeof(buf));
      if (n <= 0) {
        out_open = false;
      } else if (command.on_output) {
        command.on_output(absl::string_view(buf, static_cast<size_t>(n)));
      } else {
        line_buf.append(buf, static_cast<size_t>(n));
        size_t nl;
        while ((nl = line_buf.find('\n')) != std::string::npos) {
          std::string line = line_buf.substr(0, nl);
          line_buf.erase(0, nl + 1);
          if (!line.empty() && line.back() == '\r') line.pop_back();
          if (command.on_line && !line.empty()) command.on_line(line);
        }
      }
    }
    if (err_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      const ssize_t n = read(err[0], buf, sizeof(buf));
      if (n <= 0) {
        err_open = false;
      } else {
        if (command.on_stderr) command.on_stderr(absl::string_view(buf, static_cast<size_t>(n)));
        result.stderr_tail.append(buf, static_cast<size_t>(n));
        if (result.stderr_tail.size() > command.stderr_bytes) {
          result.stderr_tail.erase(0, result.stderr_tail.size() - command.stderr_bytes);
        }
      }
    }
  }
  if (command.on_line && !line_buf.empty()) command.on_line(line_buf);
  close(out[0]);
  close(err[0]);
  close_stdin();
  while (!reaped && waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  kill(-child, SIGKILL);  // anything the child left running in its group
  if (!reaped && command.after_exit) command.after_exit();
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

absl::StatusOr<ChildExit> RunChild(const std::vector<std::string>& argv,
                                   const std::map<std::string, std::string>& env,
                                   const std::string& cwd,
                                   const std::function<void(const std::string&)>& on_line,
                                   absl::Time deadline, const std::atomic<bool>* cancel,
                                   size_t stderr_bytes, const std::function<void()>& after_exit) {
  ChildCommand command;
  command.argv = argv;
  command.env = env;
  command.cwd = cwd;
  command.on_line = on_line;
  command.deadline = deadline;
  command.cancel = cancel;
  command.stderr_bytes = stderr_bytes;
  command.after_exit = after_exit;
  return RunChild(command);
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

}  // namespace orchestrator
