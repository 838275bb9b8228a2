#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "orchestrator/infra/v1/infra.pb.h"
#include "services/common/containers/container_engine.h"
#include "services/common/router/caddy_router.h"

namespace orchestrator::remote {

// A server deploys run on, as the mesh reaches it: the local machine, or an
// SSH server's container engine, Caddy and loopback ports through one
// OpenSSH tunnel (services/common/ssh) with the deploy user's login.
struct ServerConnection {
  std::string server_id;
  std::string server_name;
  // The LOCAL server: the mesh's own engine and Caddy, nothing below set.
  bool local = false;
  containers::ContainerEnginePtr engine;
  std::shared_ptr<router::Router> router;
  // Where its Caddy serves ("HOST:PORT" or ":PORT").
  std::string router_listen;
  // An address ("unix:///PATH") that reaches the server's 127.0.0.1:<port>.
  std::function<absl::StatusOr<std::string>(int port)> loopback;
  // The tunnel the above go through: shared by every copy, so that one
  // replaced meanwhile lasts while it is used.
  std::shared_ptr<const void> tunnel;
};

// How to reach a server (InfraService's GetServerAccess), acting for a user.
using FetchServerAccess = std::function<absl::StatusOr<infra::v1::GetServerAccessResponse>(
    const std::string& owner_id, const std::string& server_id)>;

struct ServerConnectionsOptions {
  // A remote server's Caddy, but for its admin address and listen address
  // (the server's own).
  router::CaddyRouterConfig router;
  // Where the tunnels keep their sockets and login files ("" = the
  // system's temporary directory).
  std::string scratch_dir;
  absl::Duration connect_timeout = absl::Seconds(10);
  // How long a server that could not be reached is answered with that
  // error before it is tried again (each try may take connect_timeout).
  absl::Duration retry_after = absl::Seconds(15);
};

// The connections to the servers, one tunnel per SSH server, opened on
// first use and again once it died (a call through a dead one fails
// UNAVAILABLE, which jobs retry); a server that could not be reached is
// not tried again for options.retry_after, and one server being opened
// holds up no other. A server's id is trusted once
// InfraService answered for it: the ids asked for come from the owners'
// allocations and releases.
class ServerConnections {
 public:
  ServerConnections(FetchServerAccess fetch, ServerConnectionsOptions options)
      : fetch_(std::move(fetch)), options_(std::move(options)) {}

  // `server_id`'s connection, acting for `owner_id`: FAILED_PRECONDITION
  // when it is not READY (or not LOCAL or SSH), UNAVAILABLE naming the
  // server and ssh's error when it cannot be reached now.
  absl::StatusOr<ServerConnection> For(const std::string& owner_id, const std::string& server_id);

 private:
  // The connection, or the recent failure, known for `server_id`.
  std::optional<absl::StatusOr<ServerConnection>> Known(const std::string& server_id);
  absl::StatusOr<ServerConnection> Connect(const infra::v1::GetServerAccessResponse& access) const;

  FetchServerAccess fetch_;
  const ServerConnectionsOptions options_;
  absl::Mutex mu_;
  std::map<std::string, ServerConnection> servers_ ABSL_GUARDED_BY(mu_);
  struct Failure {
    absl::Status status;
    absl::Time until;
  };
  std::map<std::string, Failure> failures_ ABSL_GUARDED_BY(mu_);
  // Held while a server's tunnel is opened (a second caller for the same
  // server finds the first one's); never with mu_ held.
  std::map<std::string, std::shared_ptr<absl::Mutex>> opening_ ABSL_GUARDED_BY(mu_);
};

}  // namespace orchestrator::remote
