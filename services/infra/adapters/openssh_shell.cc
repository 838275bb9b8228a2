#include "services/infra/adapters/openssh_shell.h"

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "services/common/process/child_process.h"
#include "services/common/ssh/openssh.h"
#include "services/infra/adapters/ansible_events.h"

namespace orchestrator::infra {
namespace {

namespace fs = std::filesystem;

using ssh::LoginDir;
using ssh::OpenSshOptions;

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
  ssh::SweepAbandonedLoginDirs(scratch_dir_);
}

absl::Status OpenSshShell::Reach(SshLogin* login, absl::Duration timeout) {
  auto dir = LoginDir::Make(scratch_dir_, login);
  if (!dir.ok()) return dir.status();
  std::vector<std::string> argv = {"ssh"};
  for (auto& o : OpenSshOptions((*dir)->path(), timeout)) argv.push_back(std::move(o));
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
  login->known_hosts = (*dir)->Read(ssh::kKnownHostsFile);
  const std::string who = absl::StrCat(login->user, "@", login->host, ":", login->port);
  if (!exit.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot run ssh (install openssh-client): ", exit.status().message()));
  }
  if (exit->exit_code == 0) return absl::OkStatus();
  if (exit->exit_code == 127 && exit->stderr_tail.empty()) {
    return absl::FailedPreconditionError("ssh is not installed here (openssh-client)");
  }
  return absl::UnavailableError(
      absl::StrCat("cannot reach ", who, " over SSH: ", ssh::SshErrorText(*exit)));
}

absl::StatusOr<PlaybookReport> OpenSshShell::RunPlaybook(
    SshLogin* login, const std::string& playbook, const std::map<std::string, std::string>& vars,
    absl::Duration timeout, const PlaybookEvents& events) {
  auto made = LoginDir::Make(scratch_dir_, login);
  if (!made.ok()) return made.status();
  const LoginDir& dir = **made;
  std::vector<std::string> ssh_args;
  for (const auto& o : OpenSshOptions(dir.path(), absl::Seconds(10))) {
    // Ansible passes the key itself (ansible_ssh_private_key_file).
    if (o == "-i" || o == dir.File(ssh::kKeyFile)) continue;
    ssh_args.push_back(o);
  }
  nlohmann::json host = {{"ansible_host", login->host},
                         {"ansible_port", login->port},
                         {"ansible_user", login->user},
                         {"ansible_connection", "ssh"},
                         {"ansible_ssh_private_key_file", dir.File(ssh::kKeyFile)},
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
  login->known_hosts = dir.Read(ssh::kKnownHostsFile);
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
  const std::string key = (*dir)->File(ssh::kKeyFile);
  auto exit = RunChild(
      {"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", key}, {}, "",
      [](const std::string&) {}, absl::Now() + absl::Seconds(30), nullptr);
  if (!exit.ok() || exit->exit_code != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot make the mesh's SSH key with ssh-keygen (install openssh-client): ",
                     exit.ok() ? exit->stderr_tail : std::string(exit.status().message())));
  }
  SshKeyPair pair;
  pair.private_key = (*dir)->Read(ssh::kKeyFile);
  pair.public_key =
      std::string(absl::StripAsciiWhitespace((*dir)->Read(absl::StrCat(ssh::kKeyFile, ".pub"))));
  if (pair.private_key.empty() || pair.public_key.empty()) {
    return absl::InternalError("ssh-keygen wrote no key");
  }
  return pair;
}

}  // namespace orchestrator::infra
