#include "services/deploy/adapters/server_targets.h"

#include "absl/strings/str_cat.h"
#include "services/deploy/adapters/http_health_probe.h"

namespace orchestrator::deploy {

std::string UrlPortSuffix(const std::string& listen) {
  const std::string port = listen.substr(listen.rfind(':') + 1);
  return port == "80" ? "" : absl::StrCat(":", port);
}

absl::StatusOr<ServerTarget> ConnectedServerTargets::For(const std::string& owner_id,
                                                         const std::string& server_id) {
  if (server_id.empty()) return local_;
  auto connection = servers_->For(owner_id, server_id);
  if (!connection.ok()) return connection.status();
  ServerTarget target = local_;
  target.server_id = connection->server_id;
  target.server_name = connection->server_name;
  if (connection->local) return target;
  target.engine = connection->engine;
  target.router = connection->router;
  target.probe = std::make_shared<HttpHealthProbe>(connection->loopback);
  target.url_port_suffix = UrlPortSuffix(connection->router_listen);
  target.remote = true;
  target.connection = connection->tunnel;
  return target;
}

}  // namespace orchestrator::deploy
