#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace orchestrator::router {

// Requests for any of `hosts` go to `upstream`: one project's LIVE release.
// The host name a URL names ("http://shop.localhost:8090/x" →
// "shop.localhost"): what a route matches.
inline std::string HostOfUrl(absl::string_view url) {
  if (size_t scheme = url.find("://"); scheme != absl::string_view::npos) {
    url.remove_prefix(scheme + 3);
  }
  return std::string(url.substr(0, url.find_first_of(":/?#")));
}

struct Route {
  // Owned by the router when it starts with its prefix: [a-z0-9-], at most
  // 128 characters, e.g. "orchestrator-prj-abc".
  std::string id;
  // Lowercase DNS names (no wildcards, no trailing dot), e.g.
  // "prj-abc.localhost"; 1 to 16 of them, each at most once.
  std::vector<std::string> hosts;
  // host:port to dial: "127.0.0.1:PORT", "[::1]:PORT" or "name:PORT".
  std::string upstream;

  friend bool operator==(const Route&, const Route&) = default;
};

// What a Reconcile changed; all empty when the router already matched.
struct ReconcileReport {
  // The server was made, or its listen address or HTTPS setting fixed.
  bool server_changed = false;
  std::vector<std::string> added;    // route ids
  std::vector<std::string> updated;  // hosts or upstream fixed
  std::vector<std::string> removed;  // owned, not desired (or a duplicate id)

  bool changed() const {
    return server_changed || !added.empty() || !updated.empty() || !removed.empty();
  }
};

// The HTTP front door: one route per project, changed atomically (requests
// in flight finish on the old upstream, new ones go to the new one). The
// router owns only the routes whose ids carry its prefix and never changes
// any other. Every method validates its input before anything is sent
// (INVALID_ARGUMENT naming the field) and is safe to call again.
class Router {
 public:
  virtual ~Router() = default;

  // The server the routes live in exists and listens where configured;
  // made when missing, anything else in the front door's config untouched.
  virtual absl::Status EnsureServer() = 0;
  // Adds the route, or switches an existing one to `route`'s hosts and
  // upstream in one step. FAILED_PRECONDITION when another owned route
  // already serves one of its hosts.
  virtual absl::Status PutRoute(const Route& route) = 0;
  // OK when there is no such route.
  virtual absl::Status RemoveRoute(const std::string& id) = 0;
  // The owned routes, in the order they are matched.
  virtual absl::StatusOr<std::vector<Route>> ListRoutes() = 0;
  // Makes the owned routes exactly `desired` (ids and hosts unique across
  // it), the server included: adds the missing, fixes the differing,
  // removes the rest, in one step.
  virtual absl::StatusOr<ReconcileReport> Reconcile(const std::vector<Route>& desired) = 0;
};

using RouterPtr = std::unique_ptr<Router>;

}  // namespace orchestrator::router
