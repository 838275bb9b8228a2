// SshTunnel with the real OpenSSH against an sshd in a Podman container on
// the host's network (tools/image/base-images ssh-target): HTTP requests
// reach a unix socket of the "server" (a directory of the test's, mounted
// into the container) and a TCP listener on its 127.0.0.1; a wrong key and
// a changed host key are refused with ssh's message; a server that dies or
// stops answering brings the tunnel down and requests fail within their
// timeout; the key never shows in a process's arguments or environment, and
// neither an ssh process nor a directory outlives the tunnel or the process
// that opened it. Skips, saying why, without root or the image.
#include "services/common/ssh/ssh_tunnel.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "services/common/http/http_client.h"
#include "tests/support/echo_http_server.h"
#include "tests/support/ssh_target.h"
#include "tests/support/temp_dir.h"
#include "tests/support/unix_http_server.h"

namespace orchestrator {
namespace {
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using testing::SshTarget;
using testing::TempDir;

// Where the served directory is in the container, and the socket the
// tests serve there.
constexpr char kServedInServer[] = "/srv/test";
constexpr char kAppInServer[] = "/srv/test/app.sock";

// The names in `dir`.
std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    names.push_back(e.path().filename().string());
  }
  return names;
}

// Whether `condition` held within `limit` (checked every 20 ms: what it
// watches is another process).
bool Eventually(const std::function<bool()>& condition, absl::Duration limit) {
  const absl::Time deadline = absl::Now() + limit;
  while (!condition()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

// The ssh processes whose command line mentions `text`.
int SshProcessesMentioning(const std::string& text) {
  int found = 0;
  for (const auto& [pid, args] : testing::SshProcesses()) {
    for (const std::string& arg : args) {
      if (arg.find(text) != std::string::npos) {
        ++found;
        break;
      }
    }
  }
  return found;
}

// One GET of `target` over the unix socket at `socket`.
absl::StatusOr<http::Response> Get(const std::string& socket, const std::string& target,
                                   absl::Duration timeout = absl::Seconds(5)) {
  auto base = http::BaseUrl::Parse(absl::StrCat("unix://", socket));
  if (!base.ok()) return base.status();
  http::HttpClient client(*std::move(base));
  http::Request request;
  request.target = target;
  request.timeout = timeout;
  return client.Send(request);
}

class SshTunnelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string missing = SshTarget::MissingPrerequisite(); !missing.empty()) {
      GTEST_SKIP() << missing;
    }
    std::filesystem::create_directories(scratch_);
    std::filesystem::create_directories(served_);
    // The server's user (ops) reaches the served sockets.
    chmod(served_.c_str(), 0755);
    SshTarget::Options options;
    options.host_network = true;
    options.mounts = {{served_, kServedInServer}};
    target_ = std::make_unique<SshTarget>(dir_, options);
    ASSERT_EQ(target_->Ssh("true").code, 0) << target_->started().out;
  }

  // Serves HTTP on served/<name> (answering with the request line), the
  // server's <kServedInServer>/<name>.
  std::unique_ptr<testing::UnixHttpServer> Serve(const std::string& name) {
    auto server = std::make_unique<testing::UnixHttpServer>(
        absl::StrCat(served_, "/", name), [name](int fd, const std::string& head) {
          const std::string body =
              absl::StrCat(name, " answers ", head.substr(0, head.find("\r\n")));
          testing::UnixHttpServer::WriteAll(
              fd,
              absl::StrCat("HTTP/1.0 200 OK\r\nContent-Length: ", body.size(), "\r\n\r\n", body));
        });
    chmod(server->path().c_str(), 0666);
    return server;
  }

  ssh::SshLogin Login() const {
    ssh::SshLogin login;
    login.host = "127.0.0.1";
    login.port = target_->port();
    login.user = SshTarget::kUser;
    login.private_key = target_->private_key();
    return login;
  }

  ssh::SshTunnelOptions Options() const {
    ssh::SshTunnelOptions options;
    options.scratch_dir = scratch_;
    return options;
  }

  // A new private key and its public half.
  std::pair<std::string, std::string> NewKey() {
    const std::string file = dir_.Path(absl::StrCat("other-key-", ++keys_));
    testing::Shell(absl::StrCat("ssh-keygen -q -t ed25519 -N '' -C other -f ", file));
    return {testing::ReadFile(file), testing::ReadFile(file + ".pub")};
  }

  TempDir dir_;
  const std::string scratch_ = dir_.Path("scratch");
  const std::string served_ = dir_.Path("served");
  std::unique_ptr<SshTarget> target_;
  int keys_ = 0;
};

TEST_F(SshTunnelTest, ForwardsTheServersUnixSocketsAndLoopbackPorts) {
  auto app = Serve("app.sock");
  testing::EchoHttpServer loopback;
  ssh::SshLogin login = Login();
  auto tunnel = ssh::SshTunnel::Open(
      &login,
      {{"app", kAppInServer}, {"gone", absl::StrCat(kServedInServer, "/nothing-here.sock")}},
      Options());
  ASSERT_TRUE(tunnel.ok()) << tunnel.status();
  EXPECT_TRUE((*tunnel)->alive());
  // The server's host key, accepted on first contact.
  EXPECT_THAT(login.known_hosts, HasSubstr(absl::StrCat("[127.0.0.1]:", target_->port(), " ")));

  auto answer = Get((*tunnel)->SocketPath("app"), "/hello");
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->status, 200);
  EXPECT_EQ(answer->body, "app.sock answers GET /hello HTTP/1.1");
  // Only this user may connect to the local end.
  struct stat st;
  ASSERT_EQ(stat((*tunnel)->SocketPath("app").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);
  // A socket the server does not have fails that request alone, at once.
  const absl::Time asked = absl::Now();
  EXPECT_FALSE(Get((*tunnel)->SocketPath("gone"), "/").ok());
  EXPECT_LT(absl::Now() - asked, absl::Seconds(5));

  // The server's 127.0.0.1:<port>, forwarded on first use and kept.
  auto port = (*tunnel)->TcpPort(loopback.port());
  ASSERT_TRUE(port.ok()) << port.status();
  answer = Get(*port, "/over-tcp");
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->status, 200);
  EXPECT_THAT(answer->body, HasSubstr("GET /over-tcp HTTP/1.1"));
  EXPECT_EQ(loopback.accepted(), 1);
  auto again = (*tunnel)->TcpPort(loopback.port());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *port);
  EXPECT_EQ((*tunnel)->TcpPort(0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Get((*tunnel)->SocketPath("app"), "/still").ok());

  // The key is in no process's arguments or environment, and no longer on
  // disk once ssh has logged in.
  const std::vector<std::string> key_lines = absl::StrSplit(login.private_key, '\n');
  ASSERT_GT(key_lines.size(), 2u);
  const std::string key_body = key_lines[1];
  int ssh_processes = 0;
  for (const auto& [pid, args] : testing::SshProcesses()) {
    ++ssh_processes;
    for (const std::string& arg : args) EXPECT_THAT(arg, Not(HasSubstr(key_body)));
    EXPECT_THAT(testing::ReadFile(absl::StrCat("/proc/", pid, "/environ")),
                Not(HasSubstr(key_body)));
  }
  EXPECT_GE(ssh_processes, 1);
  ASSERT_EQ(Entries(scratch_).size(), 1u);
  const std::string tunnel_dir = absl::StrCat(scratch_, "/", Entries(scratch_)[0]);
  for (const std::string& name : Entries(tunnel_dir)) {
    EXPECT_THAT(testing::ReadFile(absl::StrCat(tunnel_dir, "/", name)), Not(HasSubstr(key_body)))
        << name;
  }

  // Closed: no ssh left, no directory.
  EXPECT_GE(SshProcessesMentioning(tunnel_dir), 1);
  tunnel->reset();
  EXPECT_EQ(SshProcessesMentioning(tunnel_dir), 0);
  EXPECT_THAT(Entries(scratch_), IsEmpty());
  EXPECT_FALSE(Get(absl::StrCat(tunnel_dir, "/app"), "/").ok());
}

TEST_F(SshTunnelTest, AWrongKeyIsUnavailableWithSshsMessageAndLeavesNothing) {
  ssh::SshLogin login = Login();
  login.private_key = NewKey().first;
  auto tunnel = ssh::SshTunnel::Open(&login, {{"app", kAppInServer}}, Options());
  ASSERT_EQ(tunnel.status().code(), absl::StatusCode::kUnavailable) << tunnel.status();
  EXPECT_THAT(tunnel.status().message(), HasSubstr("Permission denied"));
  EXPECT_THAT(tunnel.status().message(), Not(HasSubstr(login.private_key.substr(40, 30))));
  EXPECT_THAT(Entries(scratch_), IsEmpty());
  EXPECT_EQ(SshProcessesMentioning(scratch_), 0);
}

TEST_F(SshTunnelTest, AChangedHostKeyIsRefused) {
  ssh::SshLogin login = Login();
  // What the mesh knew of the server: another ed25519 key than its own.
  login.known_hosts = absl::StrCat("[127.0.0.1]:", target_->port(), " ", NewKey().second);
  const std::string known = login.known_hosts;
  auto tunnel = ssh::SshTunnel::Open(&login, {}, Options());
  ASSERT_EQ(tunnel.status().code(), absl::StatusCode::kUnavailable) << tunnel.status();
  EXPECT_THAT(tunnel.status().message(), HasSubstr("Host key verification failed"));
  EXPECT_EQ(login.known_hosts, known) << "the known key is kept";
  EXPECT_THAT(Entries(scratch_), IsEmpty());
}

TEST_F(SshTunnelTest, AServerThatNeverAnswersIsUnavailableWithinTheTimeout) {
  // Connections are taken (the kernel's backlog) but nothing speaks SSH.
  const int silent = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  ASSERT_EQ(bind(silent, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(silent, 4), 0);
  ASSERT_EQ(getsockname(silent, reinterpret_cast<sockaddr*>(&a), &len), 0);
  ssh::SshLogin login = Login();
  login.port = ntohs(a.sin_port);
  ssh::SshTunnelOptions options = Options();
  options.connect_timeout = absl::Seconds(2);
  const absl::Time asked = absl::Now();
  auto tunnel = ssh::SshTunnel::Open(&login, {}, options);
  const absl::Duration took = absl::Now() - asked;
  close(silent);
  EXPECT_EQ(tunnel.status().code(), absl::StatusCode::kUnavailable) << tunnel.status();
  EXPECT_LT(took, absl::Seconds(4));
  EXPECT_THAT(Entries(scratch_), IsEmpty());
  EXPECT_EQ(SshProcessesMentioning(scratch_), 0);
}

TEST_F(SshTunnelTest, ATunnelWhoseServerDiesIsDownAndRequestsFailAtOnce) {
  auto app = Serve("app.sock");
  testing::EchoHttpServer loopback;
  ssh::SshLogin login = Login();
  auto tunnel = ssh::SshTunnel::Open(&login, {{"app", kAppInServer}}, Options());
  ASSERT_TRUE(tunnel.ok()) << tunnel.status();
  auto port = (*tunnel)->TcpPort(loopback.port());
  ASSERT_TRUE(port.ok()) << port.status();
  ASSERT_TRUE(Get((*tunnel)->SocketPath("app"), "/").ok());

  target_->Stop();
  EXPECT_TRUE(Eventually([&] { return !(*tunnel)->alive(); }, absl::Seconds(5)));
  const absl::Time asked = absl::Now();
  EXPECT_FALSE(Get((*tunnel)->SocketPath("app"), "/", absl::Seconds(5)).ok());
  EXPECT_FALSE(Get(*port, "/", absl::Seconds(5)).ok());
  EXPECT_LT(absl::Now() - asked, absl::Seconds(2)) << "they fail at once";
  auto later = (*tunnel)->TcpPort(loopback.port() == 65535 ? 1 : loopback.port() + 1);
  EXPECT_EQ(later.status().code(), absl::StatusCode::kUnavailable) << later.status();
  EXPECT_THAT(later.status().message(), HasSubstr("is down"));
  EXPECT_EQ((*tunnel)->TcpPort(loopback.port()).status().code(), absl::StatusCode::kUnavailable);
  tunnel->reset();
  EXPECT_THAT(Entries(scratch_), IsEmpty());
}

TEST_F(SshTunnelTest, AServerThatStopsAnsweringIsNoticedWithinItsKeepalives) {
  auto app = Serve("app.sock");
  ssh::SshLogin login = Login();
  auto tunnel = ssh::SshTunnel::Open(&login, {{"app", kAppInServer}}, Options());
  ASSERT_TRUE(tunnel.ok()) << tunnel.status();
  ASSERT_TRUE(Get((*tunnel)->SocketPath("app"), "/").ok());

  // Frozen: its TCP connection stays open, nothing answers on it.
  const testing::ShellResult paused = target_->Pause();
  if (paused.code != 0) GTEST_SKIP() << "podman pause does not work here: " << paused.out;
  const absl::Time asked = absl::Now();
  EXPECT_FALSE(Get((*tunnel)->SocketPath("app"), "/", absl::Seconds(2)).ok());
  EXPECT_LT(absl::Now() - asked, absl::Seconds(4)) << "no longer than the request's timeout";
  EXPECT_TRUE(Eventually([&] { return !(*tunnel)->alive(); }, absl::Seconds(25)));
  EXPECT_EQ((*tunnel)->TcpPort(8080).status().code(), absl::StatusCode::kUnavailable);
  target_->Unpause();
}

TEST_F(SshTunnelTest,
       AProcessKilledWithATunnelOpenTakesItsSshAlongAndTheNextOpenSweepsItsDirectory) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  ssh::SshLogin login = Login();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(ready[0]);
    auto tunnel = ssh::SshTunnel::Open(&login, {{"app", kAppInServer}}, Options());
    const char opened = tunnel.ok() ? '1' : '0';
    (void)!write(ready[1], &opened, 1);
    pause();
    _exit(0);
  }
  close(ready[1]);
  char opened = 0;
  ASSERT_EQ(read(ready[0], &opened, 1), 1);
  close(ready[0]);
  ASSERT_EQ(opened, '1');
  const std::vector<std::string> left = Entries(scratch_);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_THAT(left[0], ::testing::StartsWith(absl::StrCat("orchestrator-ssh-", child, "-")));
  EXPECT_GE(SshProcessesMentioning(scratch_), 1);

  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_TRUE(Eventually([&] { return SshProcessesMentioning(scratch_) == 0; }, absl::Seconds(2)))
      << "ssh outlived the process";
  // What it left holds no key.
  EXPECT_THAT(Entries(absl::StrCat(scratch_, "/", left[0])), Not(::testing::Contains("key")));

  auto tunnel = ssh::SshTunnel::Open(&login, {}, Options());
  ASSERT_TRUE(tunnel.ok()) << tunnel.status();
  const std::vector<std::string> now = Entries(scratch_);
  ASSERT_EQ(now.size(), 1u);
  EXPECT_NE(now[0], left[0]);
}

}  // namespace
}  // namespace orchestrator
