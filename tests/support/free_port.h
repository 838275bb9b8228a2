#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>

namespace orchestrator::testing {

// A loopback port nothing listens on (bound, then closed), for a server a
// test starts to take.
inline int FreePort() {
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

// A loopback port nothing listens on, below the kernel's ephemeral ports
// (32768-60999), for a server that another process starts: FreePort's ports
// are ephemeral ones, and an outgoing connection may take one before that
// server binds it. Picked at random in [20000, 31000) so that tests running
// at once rarely pick the same one (0 when none was free).
inline int FreePortBelowEphemeral() {
  std::mt19937 random{std::random_device{}()};
  std::uniform_int_distribution<int> ports(20000, 30999);
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int port = ports(random);
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    const bool bound = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    close(fd);
    if (bound) return port;
  }
  return 0;
}

}  // namespace orchestrator::testing
