#include "services/agents/runtime/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace orchestrator::agents {
namespace {

// What of /etc a program needs (users, name resolution, TLS roots, the
// dynamic loader, Debian's alternatives); nothing else of the host's /etc.
constexpr const char* kEtc[] = {
    "passwd",       "group",           "hosts",        "resolv.conf", "nsswitch.conf",
    "ssl",          "ca-certificates", "alternatives", "ld.so.cache", "ld.so.conf",
    "ld.so.conf.d", "localtime",       "mime.types",   "gitconfig",
};

constexpr int kInfoFd = 3;
constexpr uid_t kSandboxUid = 1000;

// "…"child-pid": 1234,…" → 1234.
bool JsonNumber(const std::string& json, const std::string& key, uint64_t* out) {
  const size_t at = json.find("\"" + key + "\"");
  if (at == std::string::npos) return false;
  size_t p = json.find(':', at);
  if (p == std::string::npos) return false;
  ++p;
  while (p < json.size() && (json[p] == ' ' || json[p] == '\n')) ++p;
  size_t end = p;
  while (end < json.size() && isdigit(static_cast<unsigned char>(json[end]))) ++end;
  return absl::SimpleAtoi(json.substr(p, end - p), out);
}

uint64_t PidNamespaceOf(pid_t pid) {
  char link[64];
  const std::string path = absl::StrCat("/proc/", pid, "/ns/pid");
  const ssize_t n = readlink(path.c_str(), link, sizeof(link) - 1);
  if (n <= 0) return 0;
  link[n] = '\0';
  // "pid:[4026532181]"
  const char* open = strchr(link, '[');
  uint64_t inode = 0;
  if (open == nullptr ||
      !absl::SimpleAtoi(absl::string_view(open + 1, strlen(open + 1) - 1), &inode)) {
    return 0;
  }
  return inode;
}

// The fields of /proc/<pid>/stat after the command name.
std::vector<std::string> StatFields(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  std::getline(in, line);
  const size_t close = line.rfind(')');
  std::vector<std::string> fields;
  if (close == std::string::npos) return fields;
  std::istringstream rest(line.substr(close + 2));
  std::string f;
  while (rest >> f) fields.push_back(f);
  return fields;  // [0] state, [11] utime, [12] stime
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

// The tree's cgroups with their limits: the directories the child joins.
std::vector<std::string> MakeCgroups(const SandboxSpec& spec) {
  std::vector<std::string> dirs;
  if (spec.cgroup.empty()) return dirs;
  struct Limit {
    const char* controller;
    int64_t value;
    std::vector<std::pair<std::string, std::string>> files;
  };
  const Limit limits[] = {
      {"memory", spec.memory_bytes, {{"memory.limit_in_bytes", absl::StrCat(spec.memory_bytes)}}},
      {"pids", spec.max_pids, {{"pids.max", absl::StrCat(spec.max_pids)}}},
      {"cpu",
       spec.cpu_millis,
       {{"cpu.cfs_period_us", "100000"},
        {"cpu.cfs_quota_us", absl::StrCat(spec.cpu_millis * 100)}}},
  };
  for (const auto& limit : limits) {
    if (limit.value <= 0) continue;
    const std::string dir =
        absl::StrCat("/sys/fs/cgroup/", limit.controller, "/orchestrator/", spec.cgroup);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    bool ok = !ec;
    for (const auto& [file, value] : limit.files) ok = ok && WriteFile(dir + "/" + file, value);
    if (ok) {
      dirs.push_back(dir);
    } else {
      std::filesystem::remove(dir, ec);
      spdlog::warn("sandbox {}: the {} limit is not enforced: cgroup {} is not writable",
                   spec.cgroup, limit.controller, dir);
    }
  }
  return dirs;
}

std::string Tail(const std::string& path, size_t bytes) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

}  // namespace

std::vector<std::string> BwrapCommand(const std::string& bwrap, const SandboxSpec& spec) {
  std::vector<std::string> a = {bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts"};
  if (spec.isolate_network) a.push_back("--unshare-net");
  // An unprivileged user in its own user namespace: no capabilities on the host.
  a.insert(a.end(), {"--unshare-user", "--uid", absl::StrCat(kSandboxUid), "--gid",
                     absl::StrCat(kSandboxUid), "--die-with-parent", "--new-session", "--hostname",
                     spec.hostname});
  // A read-only system: /usr (Debian 12 is merged-/usr) and a few files of /etc.
  a.insert(a.end(),
           {"--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib",
            "/lib", "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/sbin", "/sbin"});
  for (const char* e : kEtc) {
    const std::string path = absl::StrCat("/etc/", e);
    a.insert(a.end(), {"--ro-bind-try", path, path});
  }
  a.insert(a.end(), {"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--bind",
                     spec.workspace, "/workspace", "--bind", spec.home, "/home/agent"});
  for (const auto& m : spec.mounts) {
    a.insert(a.end(), {m.writable ? "--bind" : "--ro-bind", m.source,
                       m.target.empty() ? m.source : m.target});
  }
  a.insert(a.end(), {"--chdir", "/workspace", "--clearenv"});
  for (const auto& [k, v] : spec.env) a.insert(a.end(), {"--setenv", k, v});
  a.insert(a.end(), {"--info-fd", absl::StrCat(kInfoFd), "--"});
  a.insert(a.end(), spec.argv.begin(), spec.argv.end());
  return a;
}

void RemoveCgroups(const std::string& cgroup) {
  if (cgroup.empty() || cgroup.find('/') != std::string::npos) return;
  for (const char* controller : {"memory", "pids", "cpu"}) {
    const std::string dir = absl::StrCat("/sys/fs/cgroup/", controller, "/orchestrator/", cgroup);
    ::rmdir(dir.c_str());  // only succeeds when empty, which is the point
  }
}

absl::StatusOr<std::string> FindBwrap() {
  for (const char* p : {"/usr/bin/bwrap", "/usr/local/bin/bwrap"}) {
    if (access(p, X_OK) == 0) return std::string(p);
  }
  return absl::FailedPreconditionError(
      "bubblewrap (bwrap) is not installed: install the Debian package 'bubblewrap' (tools/setup "
      "does), or choose --agent_runtime=unsandboxed to run agents without isolation");
}

absl::StatusOr<std::unique_ptr<Sandbox>> Sandbox::Start(const SandboxSpec& spec) {
  if (spec.argv.empty()) return absl::InvalidArgumentError("sandbox: nothing to run");
  if (spec.unsandboxed) return StartUnsandboxed(spec);
  auto bwrap = FindBwrap();
  if (!bwrap.ok()) return bwrap.status();
  const std::vector<std::string> command = BwrapCommand(*bwrap, spec);
  std::vector<char*> argv;
  for (const auto& s : command) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);

  const std::vector<std::string> cgroups = MakeCgroups(spec);
  std::vector<std::string> procs;
  for (const auto& dir : cgroups) procs.push_back(dir + "/cgroup.procs");
  int info[2];
  if (pipe2(info, O_CLOEXEC) != 0) return absl::InternalError("sandbox: pipe failed");
  const pid_t child = fork();
  if (child < 0) {
    close(info[0]);
    close(info[1]);
    return absl::ResourceExhaustedError("sandbox: fork failed");
  }
  if (child == 0) {
    // Only async-signal-safe calls from here to exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (const auto& p : procs) {  // join the tree's cgroups; descendants follow
      const int fd = open(p.c_str(), O_WRONLY);
      if (fd < 0 || write(fd, "0", 1) != 1) _exit(125);
      close(fd);
    }
    rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    const int in = open("/dev/null", O_RDONLY);
    const int out = spec.log_path.empty()
                        ? open("/dev/null", O_WRONLY)
                        : open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (in < 0 || out < 0) _exit(126);
    dup2(in, 0);
    dup2(out, 1);
    dup2(out, 2);
    dup2(info[1], kInfoFd);  // dup2 clears FD_CLOEXEC on the copy
    close_range(kInfoFd + 1, ~0U, 0);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(info[1]);
  // bwrap writes {"child-pid": …, "pid-namespace": …} once the tree exists.
  std::string json;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  char buf[512];
  while (absl::Now() < deadline) {
    pollfd p{info[0], POLLIN, 0};
    const int ready = poll(&p, 1, 100);
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    const ssize_t n = read(info[0], buf, sizeof(buf));
    if (n <= 0) break;
    json.append(buf, static_cast<size_t>(n));
    if (json.find('}') != std::string::npos) break;
  }
  close(info[0]);
  uint64_t init = 0, ns = 0;
  if (!JsonNumber(json, "child-pid", &init) || !JsonNumber(json, "pid-namespace", &ns)) {
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    return absl::InternalError(absl::StrCat(
        "sandbox did not start (bwrap exit status ", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
        ")", spec.log_path.empty() ? "" : ": " + Tail(spec.log_path, 500)));
  }
  auto sandbox = std::unique_ptr<Sandbox>(new Sandbox(child, static_cast<pid_t>(init), ns));
  sandbox->cgroups_ = cgroups;
  return sandbox;
}

absl::StatusOr<std::unique_ptr<Sandbox>> Sandbox::StartUnsandboxed(const SandboxSpec& spec) {
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : spec.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> argv, envp;
  for (const auto& s : spec.argv) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  const pid_t child = fork();
  if (child < 0) return absl::ResourceExhaustedError("sandbox: fork failed");
  if (child == 0) {
    setsid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int in = open("/dev/null", O_RDONLY);
    const int out = spec.log_path.empty()
                        ? open("/dev/null", O_WRONLY)
                        : open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (in < 0 || out < 0 || chdir(spec.workspace.c_str()) != 0) _exit(126);
    dup2(in, 0);
    dup2(out, 1);
    dup2(out, 2);
    close_range(3, ~0U, 0);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  return std::unique_ptr<Sandbox>(new Sandbox(child, child, 0));
}

Sandbox::~Sandbox() { Kill(); }

std::vector<pid_t> Sandbox::Processes() const {
  std::vector<pid_t> out;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* e = readdir(proc)) {
    int pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    if (pid_namespace_ != 0) {
      if (PidNamespaceOf(pid) == pid_namespace_) out.push_back(pid);
    } else {
      const auto fields = StatFields(pid);  // [3] is the session
      if (fields.size() > 3 && fields[3] == absl::StrCat(init_pid_)) out.push_back(pid);
    }
  }
  closedir(proc);
  return out;
}

bool Sandbox::Running() {
  if (reaped_) return false;
  if (waitpid(bwrap_pid_, &status_, WNOHANG) == bwrap_pid_) reaped_ = true;
  return !reaped_;
}

absl::StatusOr<int> Sandbox::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (Running()) {
    if (absl::Now() >= deadline) return absl::DeadlineExceededError("sandbox still running");
    absl::SleepFor(absl::Milliseconds(5));
  }
  return status_;
}

absl::Status Sandbox::Freeze() {
  for (int pass = 0; pass < 200; ++pass) {
    bool all_stopped = true;
    const auto procs = Processes();
    if (procs.empty()) return absl::FailedPreconditionError("the sandbox has no processes left");
    for (pid_t p : procs) {
      const auto fields = StatFields(p);
      if (fields.empty()) continue;  // gone meanwhile
      const char state = fields[0][0];
      if (state == 'T' || state == 't' || state == 'Z' || state == 'X') continue;
      all_stopped = false;
      kill(p, SIGSTOP);
    }
    if (all_stopped) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(1));
  }
  Thaw().IgnoreError();
  return absl::UnavailableError("the sandbox's processes kept starting; not frozen");
}

absl::Status Sandbox::Thaw() {
  for (pid_t p : Processes()) kill(p, SIGCONT);
  return absl::OkStatus();
}

void Sandbox::Kill() {
  if (Running()) {
    // The pid namespace ends with its first process: every process in it dies.
    if (pid_namespace_ == 0) {
      for (pid_t p : Processes()) kill(p, SIGKILL);
    } else if (PidNamespaceOf(init_pid_) == pid_namespace_) {
      kill(init_pid_, SIGKILL);
    }
    // bwrap reaps the tree's first process and exits; only if it does not,
    // it goes too.
    if (!Wait(absl::Seconds(2)).ok()) kill(bwrap_pid_, SIGKILL);
  }
  if (!reaped_) {
    waitpid(bwrap_pid_, &status_, 0);
    reaped_ = true;
  }
  // An empty cgroup can go; its last processes may take a moment to leave.
  for (const auto& dir : cgroups_) {
    for (int i = 0; i < 100 && ::rmdir(dir.c_str()) != 0 && errno == EBUSY; ++i) {
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  cgroups_.clear();
}

absl::Duration Sandbox::CpuTime() const {
  static const long ticks = sysconf(_SC_CLK_TCK);
  int64_t total = 0;
  for (pid_t p : Processes()) {
    const auto fields = StatFields(p);
    int64_t user = 0, system = 0;
    if (fields.size() > 12 && absl::SimpleAtoi(fields[11], &user) &&
        absl::SimpleAtoi(fields[12], &system)) {
      total += user + system;
    }
  }
  return absl::Seconds(static_cast<double>(total) / static_cast<double>(ticks));
}

}  // namespace orchestrator::agents
