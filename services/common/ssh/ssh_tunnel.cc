#include "services/common/ssh/ssh_tunnel.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace orchestrator::ssh {
namespace {

// ssh's control socket in the tunnel's directory, and the prefix of the
// sockets TcpPort makes there.
constexpr char kControlSocket[] = "ctl";
constexpr char kTcpPrefix[] = "tcp-";
// ssh binds the control socket as "<path>.<16 random characters>" first.
constexpr size_t kControlBindSuffix = 17;

// The environment ssh runs in: nothing of this process's.
std::map<std::string, std::string> SshEnvironment(const std::string& home) {
  return {{"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"HOME", home}};
}

// A socket name the caller may choose: a plain file name that is none of
// the directory's own files.
bool IsSocketName(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name == kKeyFile || name == kKnownHostsFile ||
      name == kControlSocket || absl::StartsWith(name, kTcpPrefix)) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

// Whether a unix socket at `path` accepts connections now.
bool Accepts(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  const bool accepted = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return accepted;
}

bool IsSocket(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// How ssh ended, for people (it writes nothing when it is killed).
std::string EndOf(const ChildExit& exit) {
  if (exit.signal != 0 && absl::StripAsciiWhitespace(exit.stderr_tail).empty()) {
    return absl::StrCat("ssh was killed (signal ", exit.signal, ")");
  }
  return SshErrorText(exit);
}

// ssh's standard error without the notice that it accepted a new host key
// (its LogLevel is INFO).
std::string WithoutNotices(const std::string& stderr_text) {
  std::vector<absl::string_view> kept;
  for (absl::string_view line : absl::StrSplit(stderr_text, '\n')) {
    if (!absl::StartsWith(line, "Warning: Permanently added ")) kept.push_back(line);
  }
  return absl::StrJoin(kept, "\n");
}

// Its last line: what ended a tunnel that ran (before it, ssh may have
// reported connections to a remote socket that failed).
std::string LastLine(const std::string& text) {
  const size_t newline = text.rfind('\n');
  return newline == std::string::npos ? text : text.substr(newline + 1);
}

}  // namespace

SshTunnel::SshTunnel(std::unique_ptr<LoginDir> dir, const SshLogin& login,
                     const SshTunnelOptions& options)
    : dir_(std::move(dir)),
      host_(login.host),
      port_(login.port),
      user_(login.user),
      who_(absl::StrCat(login.user, "@", login.host, ":", login.port)),
      options_(options) {}

absl::StatusOr<std::unique_ptr<SshTunnel>> SshTunnel::Open(
    SshLogin* login, const std::map<std::string, std::string>& sockets,
    const SshTunnelOptions& options) {
  size_t longest = std::max(sizeof(kControlSocket) - 1 + kControlBindSuffix,
                            sizeof(kTcpPrefix) - 1 + sizeof("65535") - 1);
  for (const auto& [name, remote] : sockets) {
    if (!IsSocketName(name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sockets: '", name, "' is not a socket name (letters, digits, '.', '_', '-')"));
    }
    if (!absl::StartsWith(remote, "/") || remote.find_first_of(": \t\r\n") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("sockets[", name, "]: '", remote, "' is not an absolute path"));
    }
    longest = std::max(longest, name.size());
  }
  SweepAbandonedLoginDirs(options.scratch_dir);
  auto dir = LoginDir::Make(options.scratch_dir, login);
  if (!dir.ok()) return dir.status();
  const std::string& path = (*dir)->path();
  if (path.size() + 1 + longest >= sizeof(sockaddr_un::sun_path) ||
      path.find(':') != std::string::npos) {
    return absl::FailedPreconditionError(
        absl::StrCat("scratch_dir: ", path, " cannot hold unix sockets (too long, or a ':')"));
  }

  std::vector<std::string> argv = {"ssh"};
  auto add = [&argv](std::vector<std::string> args) {
    argv.insert(argv.end(), std::make_move_iterator(args.begin()),
                std::make_move_iterator(args.end()));
  };
  // ssh keeps an option's first value: INFO (over OpenSshOptions' ERROR)
  // has it say why a link it ran died ("Timeout, server ... not responding").
  add({"-o", "LogLevel=INFO"});
  if (options.known_hosts_only) add({"-o", "StrictHostKeyChecking=yes"});
  add(OpenSshOptions(path, options.connect_timeout));
  // A master that runs no command and fails rather than go without a
  // forward; a dead link (three unanswered keepalives, 5 s apart) ends it.
  add({"-N", "-o", "ControlMaster=yes", "-o",
       absl::StrCat("ControlPath=", (*dir)->File(kControlSocket)), "-o", "ControlPersist=no", "-o",
       "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
       "-o", "StreamLocalBindUnlink=yes", "-o", "StreamLocalBindMask=0177"});
  for (const auto& [name, remote] : sockets) {
    add({"-L", absl::StrCat((*dir)->File(name), ":", remote)});
  }
  add({"-p", std::to_string(login->port), "-l", login->user, "--", login->host});

  auto tunnel = std::unique_ptr<SshTunnel>(new SshTunnel(*std::move(dir), *login, options));
  tunnel->supervisor_ = std::thread(&SshTunnel::Supervise, tunnel.get(), std::move(argv));
  // ssh binds every local forward before it listens on its control socket.
  auto ready = [&] {
    if (!Accepts(tunnel->dir_->File(kControlSocket))) return false;
    return std::all_of(sockets.begin(), sockets.end(), [&](const auto& socket) {
      return IsSocket(tunnel->SocketPath(socket.first));
    });
  };
  const absl::Time deadline = absl::Now() + options.connect_timeout;
  bool opened = ready();
  while (!opened && absl::Now() < deadline &&
         !tunnel->exited_.WaitForNotificationWithTimeout(absl::Milliseconds(20))) {
    opened = ready();
  }
  if (opened) {
    // It has logged in: the key is not needed again.
    ::unlink(tunnel->dir_->File(kKeyFile).c_str());
    login->known_hosts = tunnel->dir_->Read(kKnownHostsFile);
    return tunnel;
  }

  const bool timed_out = !tunnel->exited_.HasBeenNotified();
  tunnel->cancel_ = true;
  tunnel->exited_.WaitForNotification();
  login->known_hosts = tunnel->dir_->Read(kKnownHostsFile);
  ChildExit exit;
  {
    absl::MutexLock lock(&tunnel->mu_);
    exit = tunnel->exit_;
  }
  exit.stderr_tail = WithoutNotices(exit.stderr_tail);
  const std::string said(absl::StripAsciiWhitespace(exit.stderr_tail));
  if (!timed_out && exit.exit_code == 127 && absl::StartsWith(said, "ssh: ")) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot run ssh (install openssh-client): ", said));
  }
  const std::string error =
      timed_out ? absl::StrCat("no tunnel within ", absl::FormatDuration(options.connect_timeout),
                               said.empty() ? "" : absl::StrCat(": ", SshErrorText(exit)))
                : EndOf(exit);
  return absl::UnavailableError(
      absl::StrCat("cannot open an SSH tunnel to ", tunnel->who_, ": ", error));
}

SshTunnel::~SshTunnel() {
  cancel_ = true;
  if (supervisor_.joinable()) supervisor_.join();
}

void SshTunnel::Supervise(std::vector<std::string> argv) {
  ChildCommand command;
  command.argv = std::move(argv);
  command.env = SshEnvironment(dir_->path());
  command.inherit_environment = false;
  command.on_line = [](const std::string&) {};
  command.cancel = &cancel_;
  // RunChild's child gets SIGKILL when this thread ends (PR_SET_PDEATHSIG),
  // so with the process; the thread lasts as long as ssh.
  auto exit = RunChild(command);
  {
    absl::MutexLock lock(&mu_);
    if (exit.ok()) {
      exit_ = *std::move(exit);
    } else {
      exit_.stderr_tail = std::string(exit.status().message());
    }
  }
  exited_.Notify();
}

std::string SshTunnel::SocketPath(const std::string& name) const { return dir_->File(name); }

std::vector<std::string> SshTunnel::ControlCommand(const std::vector<std::string>& request) const {
  std::vector<std::string> argv = {"ssh",           "-F", "/dev/null",      "-o",
                                   "BatchMode=yes", "-o", "LogLevel=ERROR", "-S"};
  argv.push_back(dir_->File(kControlSocket));
  argv.insert(argv.end(), request.begin(), request.end());
  argv.insert(argv.end(), {"-p", std::to_string(port_), "-l", user_, "--", host_});
  return argv;
}

absl::Status SshTunnel::Down() const {
  absl::MutexLock lock(&mu_);
  return absl::UnavailableError(
      absl::StrCat("the SSH tunnel to ", who_, " is down: ", LastLine(EndOf(exit_))));
}

absl::StatusOr<std::string> SshTunnel::TcpPort(int port) {
  if (port < 1 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port: ", port, " is not a TCP port"));
  }
  absl::MutexLock lock(&forwards_mu_);
  if (!alive()) return Down();
  if (auto it = tcp_sockets_.find(port); it != tcp_sockets_.end()) return it->second;
  const std::string local = dir_->File(absl::StrCat(kTcpPrefix, port));
  ChildCommand command;
  command.argv = ControlCommand({"-O", "forward", "-L", absl::StrCat(local, ":127.0.0.1:", port)});
  command.env = SshEnvironment(dir_->path());
  command.inherit_environment = false;
  command.on_line = [](const std::string&) {};
  command.deadline = absl::Now() + options_.connect_timeout;
  auto exit = RunChild(command);
  if (!alive()) return Down();
  if (!exit.ok()) return exit.status();
  if (exit->exit_code != 0) {
    return absl::UnavailableError(absl::StrCat("cannot forward 127.0.0.1:", port,
                                               " through the SSH tunnel to ", who_, ": ",
                                               SshErrorText(*exit)));
  }
  tcp_sockets_[port] = local;
  return local;
}

}  // namespace orchestrator::ssh
