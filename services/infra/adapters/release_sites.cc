#include "services/infra/adapters/release_sites.h"

#include "services/infra/adapters/http_route_probe.h"

namespace orchestrator::infra {

absl::StatusOr<ReleaseSite> ConnectedReleaseSites::For(const std::string& server_id) {
  if (server_id.empty()) return local_;
  auto connection = servers_->For("", server_id);
  if (!connection.ok()) return connection.status();
  if (connection->local) return local_;
  ReleaseSite site;
  site.engine = connection->engine;
  site.route = std::make_shared<HttpRouteProbe>(connection->router_listen, connection->loopback);
  site.connection = connection->tunnel;
  return site;
}

}  // namespace orchestrator::infra
