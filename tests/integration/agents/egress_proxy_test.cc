// The mesh's egress proxy on its own, over real sockets: a worker's unix
// socket in front, a real HTTP server on loopback behind.
#include "services/agents/egress/egress_proxy.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/echo_http_server.h"
#include "tests/support/log_capture.h"

namespace orchestrator::agents {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using EchoServer = testing::EchoHttpServer;

EgressAllowlist AnyAddress(const std::string& target) {
  EgressAllowlist allow;
  allow.any_address.push_back(*ParseEgressTarget(target));
  return allow;
}

EgressAllowlist PublicOnly(const std::vector<std::string>& targets) {
  EgressAllowlist allow;
  for (const auto& t : targets) allow.public_only.push_back(*ParseEgressTarget(t));
  return allow;
}

// A client of a worker's socket.
class Client {
 public:
  explicit Client(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path.c_str());
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    timeval tv{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~Client() { close(fd_); }
  bool connected() const { return connected_; }
  void Send(const std::string& s) { (void)!write(fd_, s.data(), s.size()); }
  void EndSending() { shutdown(fd_, SHUT_WR); }
  // Reads until `until` is seen, or the end (or 10 s).
  std::string Read(const std::string& until = "") {
    char buf[4096];
    while (until.empty() || got_.find(until) == std::string::npos) {
      const ssize_t n = read(fd_, buf, sizeof(buf));
      if (n <= 0) break;
      got_.append(buf, static_cast<size_t>(n));
    }
    return got_;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string got_;
};

class EgressProxyTest : public ::testing::Test {
 protected:
  EgressProxyTest() {
    char tmpl[] = "/tmp/egress_test.XXXXXX";
    dir_ = mkdtemp(tmpl);
    auto proxy = EgressProxy::Start({.socket_dir = dir_ + "/egress"});
    EXPECT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = std::move(*proxy);
  }
  ~EgressProxyTest() override {
    proxy_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string Open(EgressAllowlist allow) {
    auto path = proxy_->Open("wrk_test", std::move(allow));
    EXPECT_TRUE(path.ok()) << path.status();
    return path.ok() ? *path : "";
  }
  std::string Local(int port) const { return absl::StrCat("127.0.0.1:", port); }
  // One request through the proxy; the whole answer.
  std::string Request(const std::string& path, const std::string& request) {
    Client c(path);
    EXPECT_TRUE(c.connected());
    c.Send(request);
    return c.Read();
  }

  testing::LogCapture log_;
  std::string dir_;
  std::unique_ptr<EgressProxy> proxy_;
  EchoServer server_;
};

TEST_F(EgressProxyTest, PlainHttpToAnAllowedTargetIsForwardedOnceInOriginForm) {
  const std::string path = Open(AnyAddress(Local(server_.port())));
  const std::string answer = Request(
      path, absl::StrCat("POST http://", Local(server_.port()),
                         "/v1/messages?beta=true HTTP/1.1\r\n", "Host: ", Local(server_.port()),
                         "\r\nProxy-Connection: keep-alive\r\nConnection: keep-alive\r\n"
                         "Content-Length: 0\r\n\r\n"));
  EXPECT_THAT(answer, StartsWith("HTTP/1.0 200 OK"));
  EXPECT_THAT(answer, HasSubstr("\r\n\r\nPOST /v1/messages?beta=true HTTP/1.1\r\n"));
  EXPECT_THAT(answer, HasSubstr("Connection: close\r\n"));
  EXPECT_THAT(answer, Not(HasSubstr("keep-alive")));
  EXPECT_THAT(
      log_.text(),
      HasSubstr(absl::StrCat("egress worker=wrk_test target=", Local(server_.port()), " allowed")));
}

// How often `what` is in `text`.
int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

void Pause() { std::this_thread::sleep_for(std::chrono::milliseconds(100)); }

TEST_F(EgressProxyTest, TheForwardedHostIsAlwaysTheTargetWhateverTheClientSaid) {
  const std::string path = Open(AnyAddress(Local(server_.port())));
  const std::string answer =
      Request(path, absl::StrCat("GET http://", Local(server_.port()), "/x HTTP/1.1\r\n",
                                 "Host: other-tenant.local\r\nX-Before: 1\r\n"
                                 "host: second.local:80\r\n\r\n"));
  EXPECT_THAT(answer, StartsWith("HTTP/1.0 200 OK"));
  EXPECT_THAT(answer, HasSubstr(absl::StrCat("\r\nHost: ", Local(server_.port()), "\r\n")));
  EXPECT_EQ(Count(absl::AsciiStrToLower(answer), "\r\nhost:"), 1) << answer;
  EXPECT_THAT(answer, Not(HasSubstr("other-tenant")));
  EXPECT_THAT(answer, Not(HasSubstr("second.local")));
  EXPECT_THAT(answer, HasSubstr("X-Before: 1\r\n"));
  // Without a Host, the request gets the target's.
  EXPECT_THAT(
      Request(path, absl::StrCat("GET http://", Local(server_.port()), "/ HTTP/1.0\r\n\r\n")),
      HasSubstr(absl::StrCat("\r\nHost: ", Local(server_.port()), "\r\n")));
}

TEST_F(EgressProxyTest, APipelinedSecondRequestNeverGoesUpstream) {
  EchoServer whole(EchoServer::Reads::kToEnd);  // answers with all it got
  EchoServer elsewhere;
  EgressAllowlist allow = AnyAddress(whole.address());
  allow.any_address.push_back(*ParseEgressTarget(elsewhere.address()));
  const std::string path = Open(std::move(allow));
  const std::string second =
      absl::StrCat("GET http://", elsewhere.address(),
                   "/second HTTP/1.1\r\nHost: ", elsewhere.address(), "\r\n\r\n");
  {  // in the same write as the first
    Client c(path);
    ASSERT_TRUE(c.connected());
    c.Send(absl::StrCat("GET http://", whole.address(),
                        "/first HTTP/1.1\r\nHost: ", whole.address(), "\r\n\r\n", second));
    c.EndSending();
    const std::string answer = c.Read();
    EXPECT_THAT(answer, StartsWith("HTTP/1.0 200 OK"));
    EXPECT_THAT(answer, HasSubstr("\r\n\r\nGET /first HTTP/1.1\r\n"));
    EXPECT_THAT(answer, Not(HasSubstr("second")));
    EXPECT_TRUE(absl::EndsWith(answer, "Connection: close\r\n\r\n")) << answer;
  }
  {  // after the first one's body, in later writes
    Client c(path);
    ASSERT_TRUE(c.connected());
    c.Send(absl::StrCat("POST http://", whole.address(),
                        "/first HTTP/1.1\r\nContent-Length: 5\r\n\r\nhe"));
    Pause();
    c.Send("llo" + second);
    Pause();
    c.Send(second);
    c.EndSending();
    const std::string answer = c.Read();
    EXPECT_THAT(answer, StartsWith("HTTP/1.0 200 OK"));
    EXPECT_TRUE(absl::EndsWith(answer, "Connection: close\r\n\r\nhello")) << answer;
  }
  {  // after a chunked body
    Client c(path);
    ASSERT_TRUE(c.connected());
    c.Send(absl::StrCat("POST http://", whole.address(),
                        "/first HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"));
    Pause();
    c.Send("lo\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n" + second);
    Pause();
    c.Send(second);
    c.EndSending();
    const std::string answer = c.Read();
    EXPECT_THAT(answer, StartsWith("HTTP/1.0 200 OK"));
    EXPECT_TRUE(
        absl::EndsWith(answer, "\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n"))
        << answer;
  }
  EXPECT_EQ(whole.accepted(), 3);
  EXPECT_EQ(elsewhere.accepted(), 0);
  EXPECT_THAT(log_.text(), HasSubstr("what follows the request is dropped"));
}

TEST_F(EgressProxyTest, AHeadThatFramesItsBodyAmbiguouslyIsRefusedWith400) {
  const std::string path = Open(AnyAddress(Local(server_.port())));
  const std::string start = absl::StrCat("POST http://", Local(server_.port()), "/ HTTP/1.1\r\n");
  for (const char* smuggle : {
           "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
           "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
           "Transfer-Encoding: gzip\r\n\r\n",
           "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
           "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
           "Content-Length: 0\r\nContent-Length: 0\r\n\r\n",
           "Content-Length: +1\r\n\r\nx",
           "Content-Length: 1, 1\r\n\r\nx",
           "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
           "X-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
           "X-A: 1\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
           "Transfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
           "Transfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n",
           "Transfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n",
       }) {
    EXPECT_THAT(Request(path, start + smuggle), StartsWith("HTTP/1.1 400 Bad Request")) << smuggle;
  }
  EXPECT_EQ(server_.accepted(), 0);
}

TEST_F(EgressProxyTest, AChunkedBodyThatGoesWrongLaterEndsTheConnection) {
  EchoServer whole(EchoServer::Reads::kToEnd);
  const std::string path = Open(AnyAddress(whole.address()));
  Client c(path);
  ASSERT_TRUE(c.connected());
  c.Send(absl::StrCat("POST http://", whole.address(),
                      "/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"));
  Pause();
  c.Send("1;" + std::string(8000, 'a'));  // a chunk-size line longer than 4 KiB
  EXPECT_THAT(c.Read(), Not(HasSubstr("aaaa")));
  EXPECT_THAT(log_.text(), HasSubstr("a malformed chunked body"));
}

TEST_F(EgressProxyTest, ConnectTunnelsBytesBothWays) {
  const std::string path = Open(AnyAddress(Local(server_.port())));
  Client c(path);
  ASSERT_TRUE(c.connected());
  c.Send(absl::StrCat("CONNECT ", Local(server_.port()), " HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(c.Read("\r\n\r\n"), "HTTP/1.1 200 Connection Established\r\n\r\n");
  c.Send("GET /through-the-tunnel HTTP/1.1\r\nX-Kept: yes\r\n\r\n");
  const std::string answer = c.Read();
  EXPECT_THAT(answer, HasSubstr("HTTP/1.0 200 OK"));
  EXPECT_THAT(answer, HasSubstr("GET /through-the-tunnel HTTP/1.1\r\nX-Kept: yes\r\n"));
}

TEST_F(EgressProxyTest, WhatIsNotOnTheAllowlistIsRefusedWith403AndLogged) {
  const std::string path = Open(AnyAddress("example.com:443"));
  const std::string plain =
      Request(path, absl::StrCat("GET http://", Local(server_.port()), "/ HTTP/1.1\r\n\r\n"));
  EXPECT_THAT(plain, StartsWith("HTTP/1.1 403 Forbidden"));
  // An allowed host on another port is another target.
  EXPECT_THAT(Request(path, "CONNECT example.com:22 HTTP/1.1\r\n\r\n"),
              StartsWith("HTTP/1.1 403 Forbidden"));
  EXPECT_THAT(Request(path, "GET http://example.com/ HTTP/1.1\r\n\r\n"),
              StartsWith("HTTP/1.1 403 Forbidden"));
  EXPECT_EQ(server_.accepted(), 0);
  const std::string logged = log_.text();
  EXPECT_THAT(logged, HasSubstr(absl::StrCat(
                          "egress worker=wrk_test target=", Local(server_.port()), " refused")));
  EXPECT_THAT(logged, HasSubstr("egress worker=wrk_test target=example.com:22 refused"));
  EXPECT_THAT(logged, HasSubstr("egress worker=wrk_test target=example.com:80 refused"));
}

TEST_F(EgressProxyTest, AUsersEntryNeverReachesALoopbackAddress) {
  const std::string path =
      Open(PublicOnly({Local(server_.port()), absl::StrCat("localhost:", server_.port())}));
  for (const char* host : {"127.0.0.1", "localhost"}) {
    const std::string answer =
        Request(path, absl::StrCat("CONNECT ", host, ":", server_.port(), " HTTP/1.1\r\n\r\n"));
    EXPECT_THAT(answer, StartsWith("HTTP/1.1 403 Forbidden")) << host;
    EXPECT_THAT(answer, HasSubstr("non-public address"));
  }
  EXPECT_EQ(server_.accepted(), 0);
}

TEST_F(EgressProxyTest, WhatIsNotAProxyRequestIsRefusedWith400) {
  const std::string path = Open(AnyAddress(Local(server_.port())));
  EXPECT_THAT(Request(path, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"), StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(Request(path, "CONNECT no-port HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(Request(path, "GET https://example.com/ HTTP/1.1\r\n\r\n"),
              StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(Request(path, std::string(20000, 'A')), StartsWith("HTTP/1.1 431"));
  EXPECT_EQ(server_.accepted(), 0);
}

TEST_F(EgressProxyTest, AnAllowedTargetThatIsDownAnswers502) {
  int closed_port;
  {
    EchoServer gone;
    closed_port = gone.port();
  }
  const std::string path = Open(AnyAddress(Local(closed_port)));
  EXPECT_THAT(Request(path, absl::StrCat("CONNECT ", Local(closed_port), " HTTP/1.1\r\n\r\n")),
              StartsWith("HTTP/1.1 502"));
}

TEST_F(EgressProxyTest, ClosingAWorkerEndsItsSocketAndItsConnections) {
  const std::string path = Open(AnyAddress(Local(server_.port())));
  Client c(path);
  ASSERT_TRUE(c.connected());
  c.Send(absl::StrCat("CONNECT ", Local(server_.port()), " HTTP/1.1\r\n\r\n"));
  ASSERT_EQ(c.Read("\r\n\r\n"), "HTTP/1.1 200 Connection Established\r\n\r\n");
  proxy_->Close("wrk_test");
  EXPECT_EQ(c.Read(), "HTTP/1.1 200 Connection Established\r\n\r\n") << "ends without more";
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(Client(path).connected());
}

TEST_F(EgressProxyTest, TheSocketIsTheOwnersOnly) {
  const std::string path = Open({});
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((dir_ + "/egress").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

}  // namespace
}  // namespace orchestrator::agents
