#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"

namespace orchestrator::testing {

// An HTTP server on 127.0.0.1 (a free port) that answers every request with
// the request head it received, then closes: what a test's "outside"
// service is, and a record of what reached it. With `Reads::kToEnd` it
// answers with every byte the connection carried, once its peer has ended
// (or been silent 5 s): a record of whatever followed the head.
class EchoHttpServer final {
 public:
  enum class Reads { kHead, kToEnd };

  explicit EchoHttpServer(Reads reads = Reads::kHead) {
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
    thread_ = std::thread([this, reads] {
      while (true) {
        const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;
        ++accepted_;
        std::string head;
        char buf[4096];
        if (reads == Reads::kToEnd) {
          timeval tv{5, 0};
          setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        }
        while (reads == Reads::kToEnd || head.find("\r\n\r\n") == std::string::npos) {
          const ssize_t n = read(c, buf, sizeof(buf));
          if (n <= 0) break;
          head.append(buf, static_cast<size_t>(n));
        }
        const std::string reply =
            absl::StrCat("HTTP/1.0 200 OK\r\nContent-Length: ", head.size(), "\r\n\r\n", head);
        (void)!write(c, reply.data(), reply.size());
        close(c);
      }
    });
  }
  ~EchoHttpServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    if (thread_.joinable()) thread_.join();
  }
  EchoHttpServer(const EchoHttpServer&) = delete;
  EchoHttpServer& operator=(const EchoHttpServer&) = delete;

  int port() const { return port_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  int accepted() const { return accepted_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

}  // namespace orchestrator::testing
