#pragma once

#include <cstddef>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "services/common/router/router.h"

namespace orchestrator::router {

inline constexpr size_t kMaxRouteIdLength = 128;
inline constexpr size_t kMaxRouteIdPrefixLength = 32;
inline constexpr size_t kMaxHostsPerRoute = 16;
inline constexpr size_t kMaxHostLength = 253;
// A Reconcile's desired set.
inline constexpr size_t kMaxRoutes = 10000;

// What a front door's config may hold: every check is INVALID_ARGUMENT
// "<field>: <problem>", quoting the value escaped and cut short.

// [a-z0-9-], 1 to 32 characters.
absl::Status ValidateRouteIdPrefix(absl::string_view field, absl::string_view prefix);
// `prefix` followed by at least one more character, [a-z0-9-], at most 128.
absl::Status ValidateRouteId(absl::string_view field, absl::string_view id,
                             absl::string_view prefix);
// A lowercase DNS name: labels of [a-z0-9-] (1 to 63, no '-' at either
// end) joined by dots, at most 253 characters.
absl::Status ValidateHost(absl::string_view field, absl::string_view host);
// host:port with a port of 1 to 65535 and a host that is a DNS name as
// above, an IPv4 address or a bracketed IPv6 address. With
// `host_optional`, ":port" (every address) too.
absl::Status ValidateHostPort(absl::string_view field, absl::string_view address,
                              bool host_optional);
// The id, 1 to 16 distinct hosts and the upstream; fields named
// "<field>.id", "<field>.hosts[i]", "<field>.upstream".
absl::Status ValidateRoute(absl::string_view field, const Route& route, absl::string_view prefix);
// Each route valid ("desired[i]..."), at most kMaxRoutes, and no id or host
// in two of them.
absl::Status ValidateRouteSet(const std::vector<Route>& routes, absl::string_view prefix);

}  // namespace orchestrator::router
