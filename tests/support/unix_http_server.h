#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace orchestrator::testing {

// An HTTP server on a unix domain socket at `path` that reads each
// connection's request head and hands the connection to `answer(fd, head)`,
// which writes what the test scripts (an answer in parts, or nothing yet),
// each on its own thread; the connection is closed when `answer` returns.
class UnixHttpServer final {
 public:
  using Answer = std::function<void(int fd, const std::string& head)>;

  UnixHttpServer(std::string path, Answer answer)
      : path_(std::move(path)), answer_(std::move(answer)) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path_.c_str(), sizeof(a.sun_path) - 1);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd_, 16) != 0) return;
    thread_ = std::thread([this] {
      while (true) {
        const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;
        connections_.emplace_back([this, c] {
          std::string head;
          char buf[4096];
          while (head.find("\r\n\r\n") == std::string::npos) {
            const ssize_t n = read(c, buf, sizeof(buf));
            if (n <= 0) break;
            head.append(buf, static_cast<size_t>(n));
          }
          answer_(c, head);
          close(c);
        });
      }
    });
  }
  ~UnixHttpServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    if (thread_.joinable()) thread_.join();
    for (std::thread& connection : connections_) connection.join();
    unlink(path_.c_str());
  }
  UnixHttpServer(const UnixHttpServer&) = delete;
  UnixHttpServer& operator=(const UnixHttpServer&) = delete;

  const std::string& path() const { return path_; }

  // Writes all of `bytes` to `fd` (false when the peer has gone).
  static bool WriteAll(int fd, absl::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

 private:
  const std::string path_;
  const Answer answer_;
  int fd_ = -1;
  std::thread thread_;
  // Written only by thread_, read after it is joined.
  std::vector<std::thread> connections_;
};

}  // namespace orchestrator::testing
