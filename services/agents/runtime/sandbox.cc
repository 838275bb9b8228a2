#include "services/agents/runtime/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
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

// What of /etc a program needs (name resolution, TLS roots, the dynamic
// loader, Debian's alternatives); nothing else of the host's /etc. Users
// and groups are the sandbox's own (SandboxPasswd, SandboxGroup).
constexpr const char* kEtc[] = {
    "hosts",       "resolv.conf", "nsswitch.conf", "ssl",       "ca-certificates", "alternatives",
    "ld.so.cache", "ld.so.conf",  "ld.so.conf.d",  "localtime", "mime.types",      "gitconfig",
};

// The descriptors bwrap is started with (contiguous, from kInfoFd).
constexpr int kInfoFd = 3;    // bwrap writes the tree's pids here
constexpr int kArgsFd = 4;    // --args: the environment, NUL-separated
constexpr int kPasswdFd = 5;  // the sandbox's /etc/passwd
constexpr int kGroupFd = 6;   // the sandbox's /etc/group
constexpr uid_t kSandboxUid = 1000;

// An in-memory file holding `data`, read from its start; -1 on failure.
int MemFile(const char* name, const std::string& data) {
  const int fd = memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) return -1;
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return -1;
    }
    done += static_cast<size_t>(n);
  }
  if (lseek(fd, 0, SEEK_SET) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Closes the descriptors it holds when it goes.
struct Fds {
  std::vector<int> fds;
  ~Fds() {
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
  }
};

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
  a.insert(a.end(), {"--perms", "0644", "--ro-bind-data", absl::StrCat(kPasswdFd), "/etc/passwd",
                     "--perms", "0644", "--ro-bind-data", absl::StrCat(kGroupFd), "/etc/group"});
  a.insert(a.end(), {"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--bind",
                     spec.workspace, "/workspace", "--bind", spec.home, "/home/agent"});
  for (const auto& m : spec.mounts) {
    a.insert(a.end(), {m.writable ? "--bind" : "--ro-bind", m.source,
                       m.target.empty() ? m.source : m.target});
  }
  // The environment's values come through a descriptor: argv is readable
  // by every local user in /proc/<pid>/cmdline.
  a.insert(a.end(), {"--chdir", "/workspace", "--clearenv", "--args", absl::StrCat(kArgsFd)});
  a.insert(a.end(), {"--info-fd", absl::StrCat(kInfoFd), "--"});
  a.insert(a.end(), spec.argv.begin(), spec.argv.end());
  return a;
}

std::string BwrapEnvArguments(const SandboxSpec& spec) {
  std::string args;
  for (const auto& [k, v] : spec.env) {
    for (absl::string_view part :
         {absl::string_view("--setenv"), absl::string_view(k), absl::string_view(v)}) {
      args.append(part.data(), part.size());
      args.push_back('\0');
    }
  }
  return args;
}

std::string SandboxPasswd() {
  return absl::StrCat("root:x:0:0:root:/root:/usr/sbin/nologin\n", "agent:x:", kSandboxUid, ":",
                      kSandboxUid, ":agent:/home/agent:/bin/sh\n",
                      "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
}

std::string SandboxGroup() {
  return absl::StrCat("root:x:0:\n", "agent:x:", kSandboxUid, ":\n", "nogroup:x:65534:\n");
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
  // The environment reaches bwrap as NUL-separated arguments: a NUL inside a
  // name or value would smuggle in options of its own (--bind / /host). An
  // environment variable cannot hold one anyway.
  for (const auto& [k, v] : spec.env) {
    if (k.empty() || k.find('\0') != std::string::npos || k.find('=') != std::string::npos ||
        v.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sandbox: environment variable '", k.substr(0, std::min<size_t>(k.find('\0'), 64)),
          "' has a name or value no environment can hold (empty, '=' in the name, or a NUL)"));
    }
  }
  if (spec.unsandboxed) return StartUnsandboxed(spec);
  auto bwrap = FindBwrap();
  if (!bwrap.ok()) return bwrap.status();
  const std::vector<std::string> command = BwrapCommand(*bwrap, spec);
  std::vector<char*> argv;
  for (const auto& s : command) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);

  // bwrap's own environment is empty: the tree's first process (bwrap's
  // init, pid 1 inside) shows it in /proc/1/environ.
  char* const no_env[] = {nullptr};

  // What bwrap reads from descriptors: the environment, passwd and group.
  Fds files;
  files.fds = {MemFile("sandbox-args", BwrapEnvArguments(spec)),
               MemFile("sandbox-passwd", SandboxPasswd()),
               MemFile("sandbox-group", SandboxGroup())};
  for (int fd : files.fds) {
    if (fd < 0) return absl::InternalError("sandbox: cannot create its in-memory files");
  }
  const std::vector<std::string> cgroups = MakeCgroups(spec);
  std::vector<std::string> procs;
  for (const auto& dir : cgroups) procs.push_back(dir + "/cgroup.procs");
  int info[2];
  if (pipe2(info, O_CLOEXEC) != 0) return absl::InternalError("sandbox: pipe failed");
  // The descriptors bwrap gets, in the order of their numbers from kInfoFd.
  const int passed[] = {info[1], files.fds[0], files.fds[1], files.fds[2]};
  static_assert(kArgsFd == kInfoFd + 1 && kPasswdFd == kInfoFd + 2 && kGroupFd == kInfoFd + 3);
  constexpr int kPassed = 4;
  const pid_t child = fork();
  if (child < 0) {
    close(info[0]);
    close(info[1]);
    return absl::ResourceExhaustedError("sandbox: fork failed");
  }
  if (child == 0) {
    // Only async-signal-safe calls from here to exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    // Out of the way of the numbers they move to (and of stdio).
    int high[kPassed];
    for (int i = 0; i < kPassed; ++i) {
      high[i] = fcntl(passed[i], F_DUPFD, 64);
      if (high[i] < 0) _exit(126);
    }
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
    // dup2 clears FD_CLOEXEC on the copies.
    for (int i = 0; i < kPassed; ++i) dup2(high[i], kInfoFd + i);
    close_range(kInfoFd + kPassed, ~0U, 0);
    execve(argv[0], argv.data(), no_env);
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
