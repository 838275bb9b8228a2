#include "services/common/router/caddy_router.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/random/distributions.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/router/route_validation.h"
#include "services/common/validation/fields.h"

namespace orchestrator::router {

using nlohmann::json;

struct CaddyRouter::Snapshot {
  bool exists = false;
  json server;
  std::string etag;
};

namespace {

constexpr size_t kMaxServerNameLength = 64;
// Writes of the server tried before giving up on a config that keeps
// changing under us, with a random pause of up to kMaxBackoffMs << attempt
// between them (about 1.3 s in all at most).
constexpr int kMaxAttempts = 6;
constexpr int kMaxBackoffMs = 20;
constexpr int kMaxConnectionAttempts = 3;
// How much of Caddy's error message a status repeats.
constexpr size_t kMaxCaddyMessage = 300;

// The member `key` of `value` when `value` is an object that has it.
const json* Member(const json& value, const char* key) {
  if (!value.is_object()) return nullptr;
  auto it = value.find(key);
  return it == value.end() ? nullptr : &*it;
}

// The first element of `value` when it is a non-empty array.
const json* First(const json* value) {
  return value != nullptr && value->is_array() && !value->empty() ? &value->front() : nullptr;
}

std::string StringOf(const json* value) {
  return value != nullptr && value->is_string() ? value->get<std::string>() : "";
}

json RouteObject(const Route& route) {
  json upstream = json::object();
  upstream["dial"] = route.upstream;
  json handler = json::object();
  handler["handler"] = "reverse_proxy";
  handler["upstreams"] = json::array({upstream});
  json matcher = json::object();
  matcher["host"] = route.hosts;
  json object = json::object();
  object["@id"] = route.id;
  object["match"] = json::array({matcher});
  object["handle"] = json::array({handler});
  object["terminal"] = true;
  return object;
}

// What an owned route in Caddy says, as far as it has our shape.
Route RouteOf(const json& object) {
  Route route;
  route.id = StringOf(Member(object, "@id"));
  const json* matcher = First(Member(object, "match"));
  const json* hosts = matcher != nullptr ? Member(*matcher, "host") : nullptr;
  if (hosts != nullptr && hosts->is_array()) {
    for (const json& host : *hosts) {
      if (host.is_string()) route.hosts.push_back(host.get<std::string>());
    }
  }
  const json* handler = First(Member(object, "handle"));
  const json* upstream = handler != nullptr ? First(Member(*handler, "upstreams")) : nullptr;
  route.upstream = upstream != nullptr ? StringOf(Member(*upstream, "dial")) : "";
  return route;
}

// `routes` with `wanted` (the JSON of `route`) in place of the route with
// its id, or appended; FAILED_PRECONDITION when another owned route
// serves one of its hosts.
absl::Status PlaceRoute(const Route& route, const json& wanted, absl::string_view prefix,
                        json& routes) {
  json kept = json::array();
  bool placed = false;
  for (json& existing : routes) {
    const std::string id = StringOf(Member(existing, "@id"));
    if (id == route.id) {
      // In its place, so the order of the routes stays; a duplicate id goes.
      if (!placed) kept.push_back(wanted);
      placed = true;
      continue;
    }
    if (absl::StartsWith(id, prefix)) {
      for (const std::string& host : RouteOf(existing).hosts) {
        if (std::find(route.hosts.begin(), route.hosts.end(), host) != route.hosts.end()) {
          return absl::FailedPreconditionError(
              absl::StrCat("route ", id, " already serves host ", host,
                           "; remove it or change its hosts first"));
        }
      }
    }
    kept.push_back(std::move(existing));
  }
  if (!placed) kept.push_back(wanted);
  routes = std::move(kept);
  return absl::OkStatus();
}

// Makes the owned routes in `routes` exactly `desired` (`wanted` holds
// their JSON by id): fixed in place, the missing appended, the rest
// dropped; others stay where they are.
ReconcileReport ReconcileRoutes(const std::vector<Route>& desired,
                                const absl::flat_hash_map<std::string, json>& wanted,
                                absl::string_view prefix, json& routes) {
  ReconcileReport report;
  absl::flat_hash_set<std::string> placed;
  json kept = json::array();
  for (json& existing : routes) {
    const std::string id = StringOf(Member(existing, "@id"));
    if (!absl::StartsWith(id, prefix)) {
      kept.push_back(std::move(existing));
      continue;
    }
    auto it = wanted.find(id);
    if (it == wanted.end() || !placed.insert(id).second) {
      report.removed.push_back(id);
      continue;
    }
    if (existing != it->second) report.updated.push_back(id);
    kept.push_back(it->second);
  }
  for (const Route& route : desired) {
    if (placed.contains(route.id)) continue;
    report.added.push_back(route.id);
    kept.push_back(wanted.at(route.id));
  }
  routes = std::move(kept);
  return report;
}

// Caddy's "error" message, printable and cut short.
std::string CaddyMessage(const http::Response& response) {
  const json body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  std::string message = StringOf(Member(body, "error"));
  if (message.empty()) return absl::StrCat("HTTP ", response.status);
  if (message.size() > kMaxCaddyMessage) {
    size_t cut = kMaxCaddyMessage;
    while (cut > 0 && (static_cast<unsigned char>(message[cut]) & 0xC0) == 0x80) --cut;
    message = absl::StrCat(message.substr(0, cut), "...");
  }
  for (char& c : message) {
    if (absl::ascii_iscntrl(c)) c = ' ';
  }
  return absl::StrCat("HTTP ", response.status, ": ", message);
}

// A non-2xx answer as a status. Caddy 2.6 answers 500 for a config it
// refuses to load (a taken listen address, a key that already exists):
// fixing the state, not retrying, is what helps.
absl::Status ErrorOf(const http::Response& response, const std::string& what) {
  const std::string message = absl::StrCat(what, ": ", CaddyMessage(response));
  if (response.status == 412) return absl::AbortedError(message);
  if (response.status >= 502 && response.status <= 504) return absl::UnavailableError(message);
  return absl::FailedPreconditionError(message);
}

bool Succeeded(const http::Response& response) {
  return response.status >= 200 && response.status < 300;
}

std::string Dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::string CaddyRouteJson(const Route& route) { return Dump(RouteObject(route)); }

absl::Status CheckListenerMigration(const std::string& sysctl_file) {
  std::ifstream in(sysctl_file);
  std::string value;
  if (!std::getline(in, value)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot read ", sysctl_file,
        ": without net.ipv4.tcp_migrate_req (Linux 5.14 or later) each Caddy config change may "
        "reset connections waiting on its listeners"));
  }
  value = std::string(absl::StripAsciiWhitespace(value)).substr(0, 16);
  if (value != "1") {
    return absl::FailedPreconditionError(absl::StrCat(
        "net.ipv4.tcp_migrate_req is ", absl::CHexEscape(value),
        ": each Caddy config change (every route switch) listens anew and closes the old "
        "listeners, resetting connections waiting on them; set it to 1 where Caddy runs "
        "(sysctl -w net.ipv4.tcp_migrate_req=1)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CaddyRouter>> CaddyRouter::FromConfig(CaddyRouterConfig config) {
  auto admin = http::BaseUrl::Parse(config.admin_url);
  if (!admin.ok()) return InvalidField("admin_url", admin.status().message());
  const bool server_name_ok =
      !config.server_name.empty() && config.server_name.size() <= kMaxServerNameLength &&
      std::all_of(config.server_name.begin(), config.server_name.end(), [](char c) {
        return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-' || c == '_';
      });
  if (!server_name_ok) {
    return InvalidField("server_name", absl::StrCat("must be 1 to ", kMaxServerNameLength,
                                                    " lowercase letters, digits, '-' or '_'"));
  }
  if (auto s = ValidateHostPort("listen", config.listen, /*host_optional=*/true); !s.ok()) {
    return s;
  }
  if (auto s = ValidateRouteIdPrefix("route_id_prefix", config.route_id_prefix); !s.ok()) {
    return s;
  }
  if (config.timeout <= absl::ZeroDuration()) {
    return InvalidField("timeout", "must be positive");
  }
  while (absl::EndsWith(config.admin_url, "/")) config.admin_url.pop_back();
  return std::unique_ptr<CaddyRouter>(new CaddyRouter(std::move(config), *std::move(admin)));
}

CaddyRouter::CaddyRouter(CaddyRouterConfig config, http::BaseUrl admin)
    : config_(std::move(config)),
      server_path_(absl::StrCat("/config/apps/http/servers/", config_.server_name)),
      client_(std::move(admin), http::ClientOptions{.user_agent = "orchestrator-router"}) {}

std::string CaddyRouter::Naming(const std::string& method, const std::string& path) const {
  return absl::StrCat("Caddy's admin API at ", config_.admin_url, " (", method, " ", path, ")");
}

absl::StatusOr<http::Response> CaddyRouter::Call(const std::string& method, const std::string& path,
                                                 const std::string& body,
                                                 const std::string& if_match) {
  http::Request request;
  request.method = method;
  request.target = path;
  if (!body.empty()) request.headers.emplace_back("Content-Type", "application/json");
  if (!if_match.empty()) request.headers.emplace_back("If-Match", if_match);
  request.body = body;
  request.timeout = config_.timeout;
  // Every call made here may be repeated: GETs, PATCHes conditional on an
  // ETag, PUTs that fail once the key exists. A connection refused or reset
  // (Caddy restarts its admin endpoint on each config change) is tried
  // again at once; a call that used up its deadline is not.
  absl::StatusOr<http::Response> response;
  for (int attempt = 0; attempt < kMaxConnectionAttempts; ++attempt) {
    const absl::Time start = absl::Now();
    response = client_.Send(request);
    if (response.ok() || response.status().code() != absl::StatusCode::kUnavailable ||
        absl::Now() - start >= config_.timeout) {
      break;
    }
  }
  if (!response.ok()) {
    return absl::Status(response.status().code(),
                        absl::StrCat(Naming(method, path), ": ", response.status().message()));
  }
  return response;
}

absl::StatusOr<CaddyRouter::Snapshot> CaddyRouter::ReadServer() {
  auto response = Call("GET", server_path_, "", "");
  if (!response.ok()) return response.status();
  const std::string what = Naming("GET", server_path_);
  Snapshot snapshot;
  // Caddy answers a GET of a path its config lacks with 400 (a missing
  // parent) or null (a missing last key).
  if (response->status == 400) return snapshot;
  if (response->status != 200) return ErrorOf(*response, what);
  snapshot.server = json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (snapshot.server.is_discarded()) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": the answer is not JSON"));
  }
  snapshot.etag = response->Header("ETag");
  if (snapshot.etag.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": the answer has no ETag (Caddy 2.6 or later is required)"));
  }
  snapshot.exists = !snapshot.server.is_null();
  return snapshot;
}

void CaddyRouter::Conform(json& server) const {
  if (!server.is_object()) server = json::object();
  server["listen"] = json::array({config_.listen});
  if (config_.plain_http) {
    json& https = server["automatic_https"];
    if (!https.is_object()) https = json::object();
    https["disable"] = true;
  } else if (auto https = server.find("automatic_https");
             https != server.end() && https->is_object()) {
    https->erase("disable");
    if (https->empty()) server.erase(https);
  }
  if (!server.contains("routes") || !server["routes"].is_array()) server["routes"] = json::array();
}

absl::StatusOr<bool> CaddyRouter::UpdateServer(bool create, RoutesEdit edit) {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    auto snapshot = ReadServer();
    if (!snapshot.ok()) return snapshot.status();
    if (!snapshot->exists && !create) return false;
    json server = snapshot->server;
    Conform(server);
    const bool server_changed = !snapshot->exists || server != snapshot->server;
    if (auto s = edit(server["routes"]); !s.ok()) return s;
    if (snapshot->exists && server == snapshot->server) return false;

    const std::string method = snapshot->exists ? "PATCH" : "PUT";
    auto response = Call(method, server_path_, Dump(server), snapshot->etag);
    if (!response.ok()) return response.status();
    if (Succeeded(*response)) return server_changed;
    if (response->status == 412) {
      // Changed since we read it: another writer is at work. A random pause
      // keeps two writers from colliding on every attempt.
      absl::SleepFor(absl::Milliseconds(absl::Uniform(bitgen_, 1, kMaxBackoffMs << attempt)));
      continue;
    }
    const absl::Status error = ErrorOf(*response, Naming(method, server_path_));
    if (method == "PUT") {
      // Someone made the server between our read and our write.
      auto again = ReadServer();
      if (again.ok() && again->exists) continue;
    }
    return error;
  }
  return absl::AbortedError(absl::StrCat("Caddy's admin API at ", config_.admin_url, ": server ",
                                         config_.server_name, " changed under each of ",
                                         kMaxAttempts, " attempts to write it"));
}

absl::Status CaddyRouter::EnsureServer() {
  absl::MutexLock lock(&mu_);
  return UpdateServer(/*create=*/true, [](json&) { return absl::OkStatus(); }).status();
}

absl::Status CaddyRouter::PutRoute(const Route& route) {
  if (auto s = ValidateRoute("route", route, config_.route_id_prefix); !s.ok()) return s;
  const json wanted = RouteObject(route);
  absl::MutexLock lock(&mu_);
  return UpdateServer(/*create=*/true,
                      [&](json& routes) {
                        return PlaceRoute(route, wanted, config_.route_id_prefix, routes);
                      })
      .status();
}

absl::Status CaddyRouter::RemoveRoute(const std::string& id) {
  if (auto s = ValidateRouteId("id", id, config_.route_id_prefix); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  return UpdateServer(/*create=*/false,
                      [&](json& routes) {
                        json kept = json::array();
                        for (json& existing : routes) {
                          if (StringOf(Member(existing, "@id")) != id) {
                            kept.push_back(std::move(existing));
                          }
                        }
                        routes = std::move(kept);
                        return absl::OkStatus();
                      })
      .status();
}

absl::StatusOr<std::vector<Route>> CaddyRouter::ListRoutes() {
  auto snapshot = ReadServer();
  if (!snapshot.ok()) return snapshot.status();
  std::vector<Route> owned;
  const json* routes = Member(snapshot->server, "routes");
  if (routes == nullptr || !routes->is_array()) return owned;
  for (const json& existing : *routes) {
    if (absl::StartsWith(StringOf(Member(existing, "@id")), config_.route_id_prefix)) {
      owned.push_back(RouteOf(existing));
    }
  }
  return owned;
}

absl::StatusOr<ReconcileReport> CaddyRouter::Reconcile(const std::vector<Route>& desired) {
  if (auto s = ValidateRouteSet(desired, config_.route_id_prefix); !s.ok()) return s;
  absl::flat_hash_map<std::string, json> wanted;
  for (const Route& route : desired) wanted.emplace(route.id, RouteObject(route));
  absl::MutexLock lock(&mu_);
  ReconcileReport report;
  auto server_changed = UpdateServer(/*create=*/true, [&](json& routes) {
    report = ReconcileRoutes(desired, wanted, config_.route_id_prefix, routes);
    return absl::OkStatus();
  });
  if (!server_changed.ok()) return server_changed.status();
  report.server_changed = *server_changed;
  return report;
}

}  // namespace orchestrator::router
