#include "services/infra/adapters/openssh_shell.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/notification.h"
#include "services/common/process/child_process.h"
#include "services/infra/adapters/ansible_events.h"

namespace orchestrator::infra {
namespace {

namespace fs = std::filesystem;

// The options every ssh of ours runs with: no user or system config, no
// agent, no password prompt, the one key, the server's own known hosts.
std::vector<std::string> SshOptions(const std::string& dir, absl::Duration connect_timeout) {
  return {
      "-F",
      "/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      absl::StrCat("ConnectTimeout=", std::max<int64_t>(1, absl::ToInt64Seconds(connect_timeout))),
      "-o",
      "StrictHostKeyChecking=accept-new",
      "-o",
      absl::StrCat("UserKnownHostsFile=", dir, "/known_hosts"),
      "-o",
      "GlobalKnownHostsFile=/dev/null",
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      "IdentityAgent=none",
      "-o",
      "PasswordAuthentication=no",
      "-o",
      "KbdInteractiveAuthentication=no",
      "-o",
      "LogLevel=ERROR",
      "-i",
      absl::StrCat(dir, "/key")};
}

constexpr char kLoginDirPrefix[] = "orchestrator-ssh-";

// Removes the login directories under `base` whose process is gone.
void SweepAbandonedLoginDirs(const std::string& base) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(base, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kLoginDirPrefix, 0) != 0) continue;
    const std::string rest = name.substr(sizeof(kLoginDirPrefix) - 1);
    const size_t dash = rest.find('-');
    int pid = 0;
    if (dash == std::string::npos || !absl::SimpleAtoi(rest.substr(0, dash), &pid) || pid <= 0) {
      continue;
    }
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to tell)
    std::error_code removed;
    fs::remove_all(entry.path(), removed);
  }
}

// A private directory with the login's key and known hosts; removed with
// everything in it when it goes.
class LoginDir {
 public:
  static absl::StatusOr<std::unique_ptr<LoginDir>> Make(const std::string& parent,
                                                        const SshLogin* login) {
    std::string base = parent.empty() ? fs::temp_directory_path().string() : parent;
    // The pid names the process the key belongs to: a directory whose
    // process died (killed mid-provision) is swept by the next one.
    std::string templ = absl::StrCat(base, "/", kLoginDirPrefix, ::getpid(), "-XXXXXX");
    if (mkdtemp(templ.data()) == nullptr) {
      return absl::InternalError(absl::StrCat("cannot make a directory under ", base));
    }
    auto dir = std::unique_ptr<LoginDir>(new LoginDir(templ));
    if (login != nullptr) {
      if (auto s = dir->Write("key", login->private_key); !s.ok()) return s;
      if (auto s = dir->Write("known_hosts", login->known_hosts); !s.ok()) return s;
    }
    return dir;
  }
  ~LoginDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

  // Writes `name` readable by this user only.
  absl::Status Write(const std::string& name, const std::string& content) const {
    const std::string file = absl::StrCat(path_, "/", name);
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return absl::InternalError(absl::StrCat("cannot write ", file));
    size_t done = 0;
    while (done < content.size()) {
      const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
      if (n <= 0) {
        ::close(fd);
        return absl::InternalError(absl::StrCat("cannot write ", file));
      }
      done += static_cast<size_t>(n);
    }
    ::close(fd);
    return absl::OkStatus();
  }
  std::string Read(const std::string& name) const {
    std::ifstream in(absl::StrCat(path_, "/", name));
    std::stringstream content;
    content << in.rdbuf();
    return content.str();
  }

 private:
  explicit LoginDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// ssh's error, for people: its last lines of standard error.
std::string SshError(const ChildExit& exit) {
  std::string error(absl::StripAsciiWhitespace(exit.stderr_tail));
  if (exit.timed_out) return "ssh timed out";
  if (error.empty()) return absl::StrCat("ssh exited with ", exit.exit_code);
  return absl::StrReplaceAll(error, {{"\r", ""}});
}

// The environment ansible-playbook runs in: nothing of the host's but
// PATH, its configuration pinned here.
std::map<std::string, std::string> AnsibleEnvironment(const std::string& dir) {
  return {{"PATH", "/usr/local/bin:/usr/bin:/bin"},
          {"HOME", dir},
          {"LANG", "C.UTF-8"},
          {"ANSIBLE_CONFIG", dir + "/ansible.cfg"},
          {"ANSIBLE_STDOUT_CALLBACK", "ansible.posix.jsonl"},
          {"ANSIBLE_LOCAL_TEMP", dir + "/tmp"},
          // No master connection left behind after the run.
          {"ANSIBLE_SSH_ARGS", "-o ControlMaster=no"},
          {"ANSIBLE_PIPELINING", "True"},
          {"ANSIBLE_PYTHON_INTERPRETER", "auto_silent"},
          {"ANSIBLE_NOCOLOR", "1"},
          {"ANSIBLE_RETRY_FILES_ENABLED", "False"},
          {"ANSIBLE_HOST_KEY_CHECKING", "True"},
          {"ANSIBLE_DEPRECATION_WARNINGS", "False"}};
}

}  // namespace

OpenSshShell::OpenSshShell(std::string scratch_dir) : scratch_dir_(std::move(scratch_dir)) {
  SweepAbandonedLoginDirs(scratch_dir_.empty() ? fs::temp_directory_path().string() : scratch_dir_);
}

absl::Status OpenSshShell::Reach(SshLogin* login, absl::Duration timeout) {
  auto dir = LoginDir::Make(scratch_dir_, login);
  if (!dir.ok()) return dir.status();
  std::vector<std::string> argv = {"ssh"};
  for (auto& o : SshOptions((*dir)->path(), timeout)) argv.push_back(std::move(o));
  for (const std::string& a : {std::string("-p"), std::to_string(login->port), std::string("-l"),
                               login->user, std::string("--"), login->host, std::string("true")}) {
    argv.push_back(a);
  }
  ChildCommand command;
  command.argv = std::move(argv);
  command.env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"HOME", (*dir)->path()}};
  command.inherit_environment = false;
  command.deadline = absl::Now() + timeout + absl::Seconds(5);
  command.on_line = [](const std::string&) {};
  auto exit = RunChild(command);
  login->known_hosts = (*dir)->Read("known_hosts");
  const std::string who = absl::StrCat(login->user, "@", login->host, ":", login->port);
  if (!exit.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot run ssh (install openssh-client): ", exit.status().message()));
  }
  if (exit->exit_code == 0) return absl::OkStatus();
  if (exit->exit_code == 127 && exit->stderr_tail.empty()) {
    return absl::FailedPreconditionError("ssh is not installed here (openssh-client)");
  }
  return absl::UnavailableError(absl::StrCat("cannot reach ", who, " over SSH: ", SshError(*exit)));
}

absl::StatusOr<PlaybookReport> OpenSshShell::RunPlaybook(
    SshLogin* login, const std::string& playbook, const std::map<std::string, std::string>& vars,
    absl::Duration timeout, const PlaybookEvents& events) {
  auto made = LoginDir::Make(scratch_dir_, login);
  if (!made.ok()) return made.status();
  const LoginDir& dir = **made;
  std::vector<std::string> ssh_args;
  for (const auto& o : SshOptions(dir.path(), absl::Seconds(10))) {
    // Ansible passes the key itself (ansible_ssh_private_key_file).
    if (o == "-i" || o == absl::StrCat(dir.path(), "/key")) continue;
    ssh_args.push_back(o);
  }
  nlohmann::json host = {{"ansible_host", login->host},
                         {"ansible_port", login->port},
                         {"ansible_user", login->user},
                         {"ansible_connection", "ssh"},
                         {"ansible_ssh_private_key_file", dir.path() + "/key"},
                         {"ansible_ssh_common_args", absl::StrJoin(ssh_args, " ")}};
  nlohmann::json inventory = {{"all", {{"hosts", {{"server", host}}}}}};
  nlohmann::json extra = nlohmann::json::object();
  for (const auto& [k, v] : vars) extra[k] = v;
  for (const auto& [name, content] :
       std::vector<std::pair<std::string, std::string>>{{"inventory.json", inventory.dump()},
                                                        {"vars.json", extra.dump()},
                                                        {"provision.yml", playbook},
                                                        {"ansible.cfg", "[defaults]\n"}}) {
    if (auto s = dir.Write(name, content); !s.ok()) return s;
  }
  std::error_code ec;
  fs::create_directories(dir.path() + "/tmp", ec);

  AnsibleEventReader reader(events.task_started);
  std::atomic<bool> cancel{false};
  absl::Notification done;
  // The handler's cancellation is a question; the child needs a flag.
  std::thread watcher([&] {
    while (!done.WaitForNotificationWithTimeout(absl::Milliseconds(500))) {
      if (events.cancelled && events.cancelled()) {
        cancel = true;
        return;
      }
    }
  });
  ChildCommand command;
  command.argv = {"ansible-playbook",
                  "--inventory",
                  dir.path() + "/inventory.json",
                  "--extra-vars",
                  "@" + dir.path() + "/vars.json",
                  dir.path() + "/provision.yml"};
  command.env = AnsibleEnvironment(dir.path());
  command.inherit_environment = false;
  command.cwd = dir.path();
  command.deadline = absl::Now() + timeout;
  command.cancel = &cancel;
  command.on_line = [&reader](const std::string& line) { reader.Line(line); };
  auto exit = RunChild(command);
  done.Notify();
  watcher.join();
  login->known_hosts = dir.Read("known_hosts");
  if (!exit.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot run ansible-playbook (install ansible): ", exit.status().message()));
  }
  PlaybookReport report = std::move(reader.report());
  report.exit_code = exit->exit_code;
  report.cancelled = exit->cancelled;
  if (exit->timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat("the playbook ran past ", absl::FormatDuration(timeout)));
  }
  if (exit->exit_code == 127 && report.tasks.empty()) {
    return absl::FailedPreconditionError("ansible-playbook is not installed here (ansible)");
  }
  bool counted_failure = report.hosts.empty();
  for (const auto& [name, s] : report.hosts) counted_failure |= s.failed > 0 || s.unreachable > 0;
  if (exit->exit_code == 0 && !counted_failure) {
    report.failed_task.clear();  // failures the playbook ignores
    report.failure.clear();
    report.unreachable = false;
  } else if (report.failed_task.empty() && exit->exit_code != 0) {
    // It stopped before any task (a playbook or inventory error).
    report.failure = std::string(absl::StripAsciiWhitespace(exit->stderr_tail));
    if (report.failure.size() > 600)
      report.failure = report.failure.substr(report.failure.size() - 600);
  }
  return report;
}

absl::StatusOr<SshKeyPair> OpenSshShell::MakeEd25519(const std::string& comment) {
  auto dir = LoginDir::Make(scratch_dir_, nullptr);
  if (!dir.ok()) return dir.status();
  const std::string key = (*dir)->path() + "/key";
  auto exit = RunChild(
      {"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", key}, {}, "",
      [](const std::string&) {}, absl::Now() + absl::Seconds(30), nullptr);
  if (!exit.ok() || exit->exit_code != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot make the mesh's SSH key with ssh-keygen (install openssh-client): ",
                     exit.ok() ? exit->stderr_tail : std::string(exit.status().message())));
  }
  SshKeyPair pair;
  pair.private_key = (*dir)->Read("key");
  pair.public_key = std::string(absl::StripAsciiWhitespace((*dir)->Read("key.pub")));
  if (pair.private_key.empty() || pair.public_key.empty()) {
    return absl::InternalError("ssh-keygen wrote no key");
  }
  return pair;
}

}  // namespace orchestrator::infra
