#include "services/common/remote/server_connections.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/common/containers/docker_engine.h"
#include "services/common/ssh/ssh_tunnel.h"

namespace orchestrator::remote {
namespace {

// The names of the forwarded sockets in a tunnel's directory.
constexpr char kEngineSocket[] = "engine.sock";
constexpr char kCaddySocket[] = "caddy-admin.sock";

}  // namespace

std::optional<absl::StatusOr<ServerConnection>> ServerConnections::Known(
    const std::string& server_id) {
  absl::MutexLock lock(&mu_);
  if (auto failed = failures_.find(server_id); failed != failures_.end()) {
    if (absl::Now() < failed->second.until) return failed->second.status;
    failures_.erase(failed);
  }
  auto it = servers_.find(server_id);
  if (it == servers_.end()) return std::nullopt;
  if (!it->second.local &&
      !std::static_pointer_cast<const ssh::SshTunnel>(it->second.tunnel)->alive()) {
    servers_.erase(it);  // opened again
    return std::nullopt;
  }
  return it->second;
}

absl::StatusOr<ServerConnection> ServerConnections::For(const std::string& owner_id,
                                                        const std::string& server_id) {
  if (auto known = Known(server_id)) return *known;
  std::shared_ptr<absl::Mutex> opening;
  {
    absl::MutexLock lock(&mu_);
    auto& slot = opening_[server_id];
    if (!slot) slot = std::make_shared<absl::Mutex>();
    opening = slot;
  }
  absl::MutexLock opening_lock(opening.get());
  if (auto known = Known(server_id)) return *known;  // opened (or failed) meanwhile
  auto access = fetch_(owner_id, server_id);
  absl::StatusOr<ServerConnection> connection =
      access.ok() ? Connect(*access) : absl::StatusOr<ServerConnection>(access.status());
  absl::MutexLock lock(&mu_);
  if (!connection.ok()) {
    // Not another owner's NOT_FOUND for the next caller, who may see it.
    if (connection.status().code() != absl::StatusCode::kNotFound &&
        connection.status().code() != absl::StatusCode::kPermissionDenied) {
      failures_[server_id] = {connection.status(), absl::Now() + options_.retry_after};
    }
    return connection.status();
  }
  servers_[server_id] = *connection;
  return connection;
}

absl::StatusOr<ServerConnection> ServerConnections::Connect(
    const infra::v1::GetServerAccessResponse& access) const {
  const infra::v1::Server& server = access.server();
  ServerConnection connection;
  connection.server_id = server.id();
  connection.server_name = server.name();
  if (server.kind() == infra::v1::SERVER_KIND_LOCAL) {
    connection.local = true;
    return connection;
  }
  if (server.kind() != infra::v1::SERVER_KIND_SSH || !access.has_ssh()) {
    return absl::FailedPreconditionError(absl::StrCat("server ", server.name(), " is ",
                                                      infra::v1::ServerKind_Name(server.kind()),
                                                      ": deploys go to LOCAL and SSH servers"));
  }
  const infra::v1::SshAccess& reach = access.ssh();
  ssh::SshLogin login;
  login.host = reach.host();
  login.port = reach.port();
  login.user = reach.user();
  login.private_key = reach.private_key();
  login.known_hosts = reach.known_hosts();
  ssh::SshTunnelOptions tunnel_options;
  tunnel_options.scratch_dir = options_.scratch_dir;
  tunnel_options.connect_timeout = options_.connect_timeout;
  tunnel_options.known_hosts_only = true;  // those provisioning accepted
  auto opened = ssh::SshTunnel::Open(
      &login, {{kEngineSocket, reach.engine_socket()}, {kCaddySocket, reach.caddy_admin_socket()}},
      tunnel_options);
  if (!opened.ok()) {
    return absl::Status(opened.status().code(),
                        absl::StrCat("server ", server.name(), ": ", opened.status().message()));
  }
  std::shared_ptr<ssh::SshTunnel> tunnel = *std::move(opened);

  containers::DockerEngineConfig engine_config;
  engine_config.url = absl::StrCat("unix://", tunnel->SocketPath(kEngineSocket));
  auto engine = containers::DockerEngine::FromConfig(engine_config);
  if (!engine.ok()) return engine.status();
  router::CaddyRouterConfig router_config = options_.router;
  router_config.admin_url = absl::StrCat("unix://", tunnel->SocketPath(kCaddySocket));
  router_config.listen = server.router_listen().empty() ? ":80" : server.router_listen();
  auto router = router::CaddyRouter::FromConfig(router_config);
  if (!router.ok()) return router.status();

  connection.engine = *std::move(engine);
  connection.router = *std::move(router);
  connection.router_listen = router_config.listen;
  connection.loopback = [tunnel](int port) -> absl::StatusOr<std::string> {
    auto socket = tunnel->TcpPort(port);
    if (!socket.ok()) return socket.status();
    return absl::StrCat("unix://", *socket);
  };
  connection.tunnel = tunnel;
  return connection;
}

}  // namespace orchestrator::remote
