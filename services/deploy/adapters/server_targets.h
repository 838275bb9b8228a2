#pragma once

#include <memory>
#include <string>

#include "services/common/remote/server_connections.h"
#include "services/deploy/domain/deploy_ports.h"

namespace orchestrator::deploy {

// What follows a release's host name in its URL for a router listening at
// `listen` ("HOST:PORT" or ":PORT"): ":PORT", or nothing for port 80.
std::string UrlPortSuffix(const std::string& listen);

// ServerTargets over the mesh's connections to its servers: the local
// engine and Caddy for the LOCAL server, an SSH server's through its
// tunnel, health probes to its loopback ports through the tunnel too.
class ConnectedServerTargets final : public ServerTargets {
 public:
  ConnectedServerTargets(ServerTarget local, std::shared_ptr<remote::ServerConnections> servers)
      : local_(std::move(local)), servers_(std::move(servers)) {}

  absl::StatusOr<ServerTarget> For(const std::string& owner_id,
                                   const std::string& server_id) override;
  const ServerTarget& Local() const override { return local_; }

 private:
  const ServerTarget local_;
  std::shared_ptr<remote::ServerConnections> servers_;
};

}  // namespace orchestrator::deploy
