#pragma once

#include <memory>
#include <string>

#include "services/common/remote/server_connections.h"
#include "services/infra/domain/diagnostics_ports.h"

namespace orchestrator::infra {

// ReleaseSites over the mesh's connections to its servers: the local
// engine and router for the LOCAL server, an SSH server's through its
// tunnel (the route probed on the server's loopback).
class ConnectedReleaseSites final : public ReleaseSites {
 public:
  ConnectedReleaseSites(ReleaseSite local, std::shared_ptr<remote::ServerConnections> servers)
      : local_(std::move(local)), servers_(std::move(servers)) {}

  absl::StatusOr<ReleaseSite> For(const std::string& server_id) override;

 private:
  const ReleaseSite local_;
  std::shared_ptr<remote::ServerConnections> servers_;
};

}  // namespace orchestrator::infra
