// The HTTP client against servers on loopback: what it sends, and how each
// way an exchange can fail reads.
#include "services/common/http/http_client.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/echo_http_server.h"
#include "tests/support/temp_dir.h"
#include "tests/support/unix_http_server.h"

namespace orchestrator::http {
namespace {

using testing::EchoHttpServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using testing::TempDir;
using testing::UnixHttpServer;

constexpr char kSecret[] = "Bearer s3cret-token";

std::unique_ptr<HttpClient> ClientOf(const std::string& url, ClientOptions options = {}) {
  auto base = BaseUrl::Parse(url);
  EXPECT_TRUE(base.ok()) << base.status();
  return std::make_unique<HttpClient>(*std::move(base), std::move(options));
}

// A server on loopback that answers every connection with `reply` after
// its first read (a request head, or a TLS ClientHello), then closes.
class CannedServer final {
 public:
  explicit CannedServer(std::string reply) : reply_(std::move(reply)) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd_, 16) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      return;
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      while (true) {
        const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;
        char buf[4096];
        (void)!read(c, buf, sizeof(buf));
        (void)!write(c, reply_.data(), reply_.size());
        shutdown(c, SHUT_WR);
        while (read(c, buf, sizeof(buf)) > 0) {
        }
        close(c);
      }
    });
  }
  ~CannedServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    if (thread_.joinable()) thread_.join();
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  const std::string reply_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

// A port nothing listens on (bound, then closed).
int ClosedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

TEST(HttpClient, SendsMethodPrefixedTargetHeadersAndBody) {
  EchoHttpServer server;
  auto client = ClientOf(absl::StrCat("http://", server.address(), "/api/v3/"),
                         ClientOptions{.user_agent = "orchestrator-test"});
  Request request;
  request.method = "POST";
  request.target = "/user/repos?x=1";
  request.headers = {{"Content-Type", "application/json"}, {"X-Extra", "yes"}};
  request.body = R"({"name":"shop"})";
  request.timeout = absl::Seconds(20);
  auto response = client->Send(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->Header("content-length"), absl::StrCat(response->body.size()));
  EXPECT_THAT(response->body, HasSubstr("POST /api/v3/user/repos?x=1 HTTP/1.1\r\n"));
  EXPECT_THAT(response->body, HasSubstr(absl::StrCat("Host: ", server.address(), "\r\n")));
  EXPECT_THAT(response->body, HasSubstr("User-Agent: orchestrator-test\r\n"));
  EXPECT_THAT(response->body, HasSubstr("X-Extra: yes\r\n"));
  EXPECT_THAT(response->body, HasSubstr("Content-Length: 15\r\n"));
}

TEST(HttpClient, ConnectionRefusedIsUnavailableNamingHostAndPortButNoSecret) {
  const int port = ClosedPort();
  auto client = ClientOf(absl::StrCat("http://127.0.0.1:", port));
  Request request;
  request.target = "/bot123:SECRET/getMe";
  request.headers = {{"Authorization", kSecret}};
  auto response = client->Send(request);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(response.status().message(), HasSubstr(absl::StrCat("GET 127.0.0.1:", port)));
  EXPECT_THAT(response.status().message(), HasSubstr("connect"));
  EXPECT_THAT(response.status().message(), Not(HasSubstr("s3cret")));
  EXPECT_THAT(response.status().message(), Not(HasSubstr("SECRET")));
}

TEST(HttpClient, SilentServerIsUnavailableAtTheDeadline) {
  // Reads to the end: it does not answer while the client waits.
  EchoHttpServer server(EchoHttpServer::Reads::kToEnd);
  auto client = ClientOf(absl::StrCat("http://", server.address()));
  Request request;
  request.timeout = absl::Milliseconds(500);
  const absl::Time start = absl::Now();
  auto response = client->Send(request);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(response.status().message(), HasSubstr("no answer within 500ms"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
}

TEST(HttpClient, CancelEndsARequestInFlight) {
  EchoHttpServer server(EchoHttpServer::Reads::kToEnd);
  // Already true: the request is sent, and ended while it waits for the
  // answer that does not come.
  std::atomic<bool> cancel{true};
  auto client =
      ClientOf(absl::StrCat("http://", server.address()), ClientOptions{.cancel = &cancel});
  Request request;
  request.timeout = absl::Seconds(60);
  auto response = client->Send(request);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kCancelled);
}

TEST(HttpClient, AnyStatusIsAResponse) {
  CannedServer server(
      "HTTP/1.1 404 Not Found\r\nX-RateLimit-Remaining: 59\r\nContent-Length: 9\r\n\r\n"
      "not here\n");
  auto response = ClientOf(absl::StrCat("http://", server.address()))->Send(Request{});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 404);
  EXPECT_EQ(response->Header("x-ratelimit-remaining"), "59");
  EXPECT_EQ(response->body, "not here\n");
}

TEST(HttpClient, AnswerLargerThanTheLimitIsRefused) {
  EchoHttpServer server;  // answers with the request head: a few hundred bytes
  auto client =
      ClientOf(absl::StrCat("http://", server.address()), ClientOptions{.max_response_bytes = 16});
  auto response = client->Send(Request{});
  EXPECT_EQ(response.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(response.status().message(), HasSubstr("larger than 16 bytes"));
}

TEST(HttpClient, TlsToAPlainServerFailsInTheHandshake) {
  CannedServer server("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
  auto client = ClientOf(absl::StrCat("https://", server.address()));
  Request request;
  request.headers = {{"Authorization", kSecret}};
  request.timeout = absl::Seconds(10);
  auto response = client->Send(request);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(response.status().message(), HasSubstr("TLS handshake"));
  EXPECT_THAT(response.status().message(), Not(HasSubstr("s3cret")));
}

// A chunked answer's head, and one chunk of it.
constexpr char kChunkedHead[] =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
std::string Chunk(absl::string_view data) {
  return absl::StrCat(absl::Hex(data.size()), "\r\n", data, "\r\n");
}

TEST(HttpClient, UnixSocketCarriesTheRequestWithHostLocalhost) {
  TempDir dir;
  UnixHttpServer server(dir.Path("engine.sock"), [](int fd, const std::string& head) {
    UnixHttpServer::WriteAll(
        fd, absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", head.size(), "\r\n\r\n", head));
  });
  auto client = ClientOf(absl::StrCat("unix://", server.path()));
  Request request;
  request.target = "/v1.41/_ping";
  auto response = client->Send(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_THAT(response->body, HasSubstr("GET /v1.41/_ping HTTP/1.1\r\n"));
  EXPECT_THAT(response->body, HasSubstr("Host: localhost\r\n"));
}

TEST(HttpClient, AbsentUnixSocketIsUnavailableNamingIt) {
  TempDir dir;
  const std::string path = dir.Path("absent.sock");
  auto response = ClientOf(absl::StrCat("unix://", path))->Send(Request{});
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(response.status().message(),
              HasSubstr(absl::StrCat("GET unix://", path, ": connect")));
}

TEST(HttpClient, UnixSocketNobodyListensOnIsConnectionRefused) {
  TempDir dir;
  const std::string path = dir.Path("stale.sock");
  {
    // Bound, then closed: the file stays, as a crashed server leaves it.
    UnixHttpServer server(path, [](int, const std::string&) {});
    ASSERT_EQ(link(path.c_str(), dir.Path("kept.sock").c_str()), 0);
  }
  auto response = ClientOf(absl::StrCat("unix://", dir.Path("kept.sock")))->Send(Request{});
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(response.status().message(), HasSubstr("unix://"));
  EXPECT_THAT(response.status().message(), HasSubstr("Connection refused"));
}

TEST(HttpClient, BodyFileIsSentWholeWithItsLength) {
  TempDir dir;
  std::string content;
  for (int i = 0; i < 100000; ++i) absl::StrAppend(&content, i, ",");
  const std::string file = dir.Write("archive.tar", content);
  // Answers with the body it received, read to its Content-Length.
  UnixHttpServer server(dir.Path("engine.sock"), [](int fd, const std::string& head) {
    const size_t end = head.find("\r\n\r\n") + 4;
    const size_t at = head.find("Content-Length: ");
    size_t length = 0;
    if (at == std::string::npos ||
        !absl::SimpleAtoi(head.substr(at + 16, head.find('\r', at) - at - 16), &length)) {
      UnixHttpServer::WriteAll(fd, "HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    std::string body = head.substr(end);
    char buf[65536];
    while (body.size() < length) {
      const ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      body.append(buf, static_cast<size_t>(n));
    }
    UnixHttpServer::WriteAll(
        fd, absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", body.size(), "\r\n\r\n", body));
  });
  auto client = ClientOf(absl::StrCat("unix://", server.path()));
  Request request;
  request.method = "POST";
  request.target = "/v1.41/images/load";
  request.body_file = file;
  auto response = client->Send(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, content);

  request.body_file = dir.Path("absent.tar");
  auto absent = client->Send(request);
  EXPECT_EQ(absent.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(absent.status().message(), HasSubstr("absent.tar"));
}

TEST(HttpClient, StreamHandsOverEachPieceAsItArrives) {
  TempDir dir;
  absl::Notification first_piece_seen;
  UnixHttpServer server(dir.Path("engine.sock"), [&](int fd, const std::string&) {
    UnixHttpServer::WriteAll(fd, absl::StrCat(kChunkedHead, Chunk("{\"stream\":\"one\"}\n")));
    // The rest only once the client has handed the first piece over.
    first_piece_seen.WaitForNotificationWithTimeout(absl::Seconds(20));
    UnixHttpServer::WriteAll(fd, absl::StrCat(Chunk("{\"stream\":\"two\"}\n"), "0\r\n\r\n"));
  });
  std::string received;
  auto response =
      ClientOf(absl::StrCat("unix://", server.path()))
          ->Stream(Request{}, [&](absl::string_view piece) {
            received.append(piece.data(), piece.size());
            if (absl::StrContains(received, "one") && !first_piece_seen.HasBeenNotified()) {
              first_piece_seen.Notify();
            }
            return true;
          });
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_TRUE(first_piece_seen.HasBeenNotified());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->Header("content-type"), "application/json");
  EXPECT_THAT(response->body, IsEmpty());
  EXPECT_EQ(received, "{\"stream\":\"one\"}\n{\"stream\":\"two\"}\n");
}

TEST(HttpClient, StreamEndsWhenTheReaderHasEnough) {
  TempDir dir;
  absl::Notification done;
  UnixHttpServer server(dir.Path("engine.sock"), [&](int fd, const std::string&) {
    UnixHttpServer::WriteAll(fd, absl::StrCat(kChunkedHead, Chunk("enough")));
    // Never ends the answer while the client reads.
    done.WaitForNotificationWithTimeout(absl::Seconds(20));
  });
  std::vector<std::string> pieces;
  Request request;
  request.timeout = absl::InfiniteDuration();
  auto response = ClientOf(absl::StrCat("unix://", server.path()))
                      ->Stream(request, [&](absl::string_view piece) {
                        pieces.emplace_back(piece);
                        return false;
                      });
  done.Notify();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_THAT(pieces, ElementsAre("enough"));
}

TEST(HttpClient, EndlessStreamWithoutDeadlineEndsOnCancel) {
  TempDir dir;
  absl::Notification done;
  UnixHttpServer server(dir.Path("engine.sock"), [&](int fd, const std::string&) {
    UnixHttpServer::WriteAll(fd, absl::StrCat(kChunkedHead, Chunk("line\n")));
    done.WaitForNotificationWithTimeout(absl::Seconds(20));
  });
  std::atomic<bool> cancel{false};
  Request request;
  request.timeout = absl::InfiniteDuration();
  request.cancel = &cancel;
  auto response =
      ClientOf(absl::StrCat("unix://", server.path()))->Stream(request, [&](absl::string_view) {
        cancel = true;  // the caller going away while the stream is quiet
        return true;
      });
  done.Notify();
  EXPECT_EQ(response.status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(response.status().message(), HasSubstr("unix://"));
}

TEST(HttpClient, StreamReadsAnErrorAnswerWhole) {
  CannedServer server(
      "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n"
      "{\"message\":\"no such image\"}");
  bool called = false;
  auto response = ClientOf(absl::StrCat("http://", server.address()))
                      ->Stream(Request{}, [&](absl::string_view) {
                        called = true;
                        return true;
                      });
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 404);
  EXPECT_EQ(response->body, "{\"message\":\"no such image\"}");
  EXPECT_FALSE(called);
}

TEST(HttpClient, StreamOfAnErrorAnswerIsBounded) {
  CannedServer server(
      absl::StrCat("HTTP/1.1 500 Oops\r\nContent-Length: 4096\r\n\r\n", std::string(4096, 'x')));
  auto response =
      ClientOf(absl::StrCat("http://", server.address()), ClientOptions{.max_response_bytes = 100})
          ->Stream(Request{}, [](absl::string_view) { return true; });
  EXPECT_EQ(response.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(HttpClient, StreamOverTcpOfALengthDelimitedAnswer) {
  EchoHttpServer server;
  std::string received;
  Request request;
  request.target = "/logs?follow=1";
  auto response = ClientOf(absl::StrCat("http://", server.address()))
                      ->Stream(request, [&](absl::string_view piece) {
                        received.append(piece.data(), piece.size());
                        return true;
                      });
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_THAT(received, HasSubstr("GET /logs?follow=1 HTTP/1.1\r\n"));
  EXPECT_EQ(response->Header("content-length"), absl::StrCat(received.size()));
}

}  // namespace
}  // namespace orchestrator::http
