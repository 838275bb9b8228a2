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
// https) or an absolute-form plain-HTTP request (`GET http://host:port/…`).
// The target must be on the worker's allowlist as host:port; anything else
// is answered 403. Every connection is logged:
// `egress worker=<id> target=<host:port> allowed|refused…`.
//
// A plain-HTTP request is forwarded in origin form with `Connection: close`
// and `Host: <the target>` (whatever Host the client sent: a target may
// route by Host, or be a proxy itself), then only its body as its head
// frames it (Content-Length bytes, or chunks up to the last one and its
// trailers); what the client sends after it (a pipelined request) never
// goes upstream, and the client's end is passed on only when it ends. A head
// that frames its body ambiguously (Content-Length and Transfer-Encoding,
// either repeated, a Transfer-Encoding other than chunked, a malformed
// header line or a bare CR/LF) is answered 400. Every buffer a connection
// keeps is bounded: the head 16 KiB, a chunk-size line 4 KiB, trailers
// 16 KiB, the relay 16 KiB each way.
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
