#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/agents/domain/egress.h"

namespace orchestrator::agents {

struct EgressProxyOptions {
  // Each worker's socket is <socket_dir>/<worker id>.sock (the directory is
  // made 0700, the sockets 0600).
  std::string socket_dir;
  absl::Duration header_timeout = absl::Seconds(30);   // to send the request head
  absl::Duration connect_timeout = absl::Seconds(10);  // to reach the target
  int max_connections_per_worker = 128;
};

// The mesh's egress proxy: the only way out of a sandbox. Each worker has
// its own unix socket (bound into its sandbox, where the runner forwards
// the agent's HTTP(S)_PROXY port to it), so the proxy knows the worker by
// the socket a connection arrives on, never by anything the sandbox says.
//
// A connection carries one request: `CONNECT host:port` (a tunnel, for
// https) or an absolute-form plain-HTTP request (`GET http://host:port/…`,
// forwarded with `Connection: close`). The target must be on the worker's
// allowlist as host:port; anything else is answered 403. Every connection
// is logged: `egress worker=<id> target=<host:port> allowed|refused…`.
//
// One thread serves every connection (Boost.Asio's epoll loop).
class EgressProxy final : public EgressGateway {
 public:
  static absl::StatusOr<std::unique_ptr<EgressProxy>> Start(EgressProxyOptions options);
  ~EgressProxy() override;  // closes every socket and connection

  EgressProxy(const EgressProxy&) = delete;
  EgressProxy& operator=(const EgressProxy&) = delete;

  absl::StatusOr<std::string> Open(const std::string& worker_id, EgressAllowlist allow) override;
  void Close(const std::string& worker_id) override;

  struct Impl;

 private:
  explicit EgressProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace orchestrator::agents
