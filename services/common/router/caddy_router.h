#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/http/http_client.h"
#include "services/common/router/router.h"

namespace orchestrator::router {

struct CaddyRouterConfig {
  // Caddy's admin API: its config's "admin": {"listen": "127.0.0.1:PORT"}.
  std::string admin_url = "http://127.0.0.1:2019";
  // The HTTP server holding the routes, apps.http.servers.<server_name>:
  // [a-z0-9_-], 1 to 64 characters.
  std::string server_name = "orchestrator";
  // Where that server listens: ":80", ":8080", "127.0.0.1:8080".
  std::string listen = ":80";
  // No automatic HTTPS on that server (no certificates, no redirects): for
  // loopback, *.localhost, or TLS ended in front of Caddy. Otherwise Caddy
  // gets certificates for the routes' hosts itself (from its own CA for
  // names like *.localhost, which it adds to the system's trust store
  // unless its config sets apps.pki.certificate_authorities.local
  // .install_trust to false).
  bool plain_http = true;
  // The routes this router owns have ids starting with it ([a-z0-9-], 1 to
  // 32 characters); it never changes any other.
  std::string route_id_prefix = "orchestrator-";
  // For each admin API call.
  absl::Duration timeout = absl::Seconds(10);
};

// The JSON of the Caddy route `route` becomes:
// {"@id": id, "match": [{"host": hosts}], "handle": [{"handler":
// "reverse_proxy", "upstreams": [{"dial": upstream}]}], "terminal": true}.
// `route` must be valid (ValidateRoute).
std::string CaddyRouteJson(const Route& route);

inline constexpr char kListenerMigrationSysctl[] = "/proc/sys/net/ipv4/tcp_migrate_req";

// OK when the kernel moves connections queued on a closing listener to
// another one of its SO_REUSEPORT group (net.ipv4.tcp_migrate_req = 1,
// Linux 5.14 or later, per network namespace), without which every Caddy
// config change may reset a few connections. FAILED_PRECONDITION saying
// what to set otherwise. Only meaningful in the network namespace Caddy
// runs in.
absl::Status CheckListenerMigration(const std::string& sysctl_file = kListenerMigrationSysctl);

// A Router on Caddy 2.6 or later, through its admin API. Caddy is started
// with a config that names the admin address and keeps its config to
// itself, e.g. `caddy run --config caddy.json` with
//   {"admin": {"listen": "127.0.0.1:2019", "config": {"persist": false}}}
// (HOME / XDG_DATA_HOME pointing somewhere writable for its storage); the
// router makes its server there, so Caddy may start with nothing else and
// may lose its config on restart: Reconcile brings the routes back.
//
// Each change is one write of the whole server (apps.http.servers.<name>),
// conditional on the server being as read (If-Match on Caddy's ETag) and
// retried when someone else changed it in between, so concurrent writers
// never lose each other's routes. Caddy applies a change by starting the
// new config next to the old one, which finishes its requests in flight.
// On Linux the new config listens on new SO_REUSEPORT sockets and the old
// ones close, resetting connections still queued on them, unless the
// kernel hands those over (CheckListenerMigration): with it, switching a
// route loses no request.
//
// Errors name "Caddy's admin API at <admin_url>": UNAVAILABLE when it does
// not answer (a refused or reset connection is tried again at once) or
// answers 502-504; FAILED_PRECONDITION with Caddy's own
// message when it refuses a change (Caddy 2.6 answers 500 for a config it
// cannot load, e.g. the listen address is taken; 4xx for a bad request);
// ABORTED when the server kept changing under every attempt.
class CaddyRouter final : public Router {
 public:
  // INVALID_ARGUMENT naming the field for a bad config; nothing is sent.
  static absl::StatusOr<std::unique_ptr<CaddyRouter>> FromConfig(CaddyRouterConfig config);

  absl::Status EnsureServer() override;
  absl::Status PutRoute(const Route& route) override;
  absl::Status RemoveRoute(const std::string& id) override;
  absl::StatusOr<std::vector<Route>> ListRoutes() override;
  absl::StatusOr<ReconcileReport> Reconcile(const std::vector<Route>& desired) override;

 private:
  struct Snapshot;  // the server as Caddy has it
  // Edits the server's routes in place; an error ends the update unwritten.
  using RoutesEdit = absl::FunctionRef<absl::Status(nlohmann::json& routes)>;

  CaddyRouter(CaddyRouterConfig config, http::BaseUrl admin);

  // "Caddy's admin API at <admin_url> (<method> <path>)", for errors.
  std::string Naming(const std::string& method, const std::string& path) const;
  // Caddy's answer to one admin call (`body` "" for none, `if_match` ""
  // for an unconditional one), whatever its status; an error only when
  // there is none.
  absl::StatusOr<http::Response> Call(const std::string& method, const std::string& path,
                                      const std::string& body, const std::string& if_match);
  absl::StatusOr<Snapshot> ReadServer();
  // Reads the server, makes it as configured, applies `edit` to its routes
  // and writes it back when anything changed; whether the server itself
  // was made or fixed. Without `create`, a missing server stays missing
  // (and `edit` is not run).
  absl::StatusOr<bool> UpdateServer(bool create, RoutesEdit edit)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Listen address, automatic HTTPS and a routes list as configured.
  void Conform(nlohmann::json& server) const;

  const CaddyRouterConfig config_;
  const std::string server_path_;  // /config/apps/http/servers/<name>
  const http::HttpClient client_;
  // Serializes this router's read-modify-write cycles so they do not make
  // each other retry; other writers are kept apart by If-Match.
  absl::Mutex mu_;
  absl::BitGen bitgen_ ABSL_GUARDED_BY(mu_);  // pauses between conflicting writes
};

}  // namespace orchestrator::router
