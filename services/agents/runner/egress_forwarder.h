#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace orchestrator::agents {

// The sandbox's end of the egress proxy. A sandbox's network namespace has
// only loopback, so agents are given HTTP(S)_PROXY=http://127.0.0.1:<port>:
// this listens there and carries each connection's bytes, unchanged, to a
// new connection on the unix socket the spawner bound into the sandbox,
// where the mesh's egress proxy decides. One thread serves every connection.
class EgressForwarder {
 public:
  // Listens on 127.0.0.1:`port` (0: any free port).
  static absl::StatusOr<std::unique_ptr<EgressForwarder>> Start(const std::string& unix_socket,
                                                                int port = 0);
  virtual ~EgressForwarder() = default;
  virtual int port() const = 0;
};

}  // namespace orchestrator::agents
