#include "services/common/router/route_validation.h"

#include <arpa/inet.h>

#include <algorithm>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/validation/fields.h"

namespace orchestrator::router {
namespace {

constexpr size_t kMaxLabelLength = 63;
// How much of a rejected value an error repeats.
constexpr size_t kMaxQuoted = 64;

std::string Quoted(absl::string_view value) {
  return absl::StrCat("\"", absl::CHexEscape(value.substr(0, kMaxQuoted)),
                      value.size() > kMaxQuoted ? "...\"" : "\"");
}

bool IsIdChar(char c) { return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-'; }

bool IsDnsName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxHostLength) return false;
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    if (label.empty() || label.size() > kMaxLabelLength || label.front() == '-' ||
        label.back() == '-' || !std::all_of(label.begin(), label.end(), IsIdChar)) {
      return false;
    }
  }
  return true;
}

bool IsAddress(int family, absl::string_view text) {
  unsigned char buffer[16];
  return inet_pton(family, std::string(text).c_str(), buffer) == 1;
}

// A DNS name, or an IPv4 address when it has only digits and dots (so
// "300.1.1.1" is neither).
bool IsDialHost(absl::string_view host) {
  const bool numeric = std::all_of(host.begin(), host.end(),
                                   [](char c) { return absl::ascii_isdigit(c) || c == '.'; });
  return numeric ? IsAddress(AF_INET, host) : IsDnsName(host);
}

bool IsPort(absl::string_view port) {
  int number = 0;
  return !port.empty() && port.size() <= 5 && port.front() != '0' &&
         std::all_of(port.begin(), port.end(), absl::ascii_isdigit) &&
         absl::SimpleAtoi(port, &number) && number >= 1 && number <= 65535;
}

}  // namespace

absl::Status ValidateRouteIdPrefix(absl::string_view field, absl::string_view prefix) {
  if (prefix.empty() || prefix.size() > kMaxRouteIdPrefixLength ||
      !std::all_of(prefix.begin(), prefix.end(), IsIdChar)) {
    return InvalidField(field,
                        absl::StrCat(Quoted(prefix), " must be 1 to ", kMaxRouteIdPrefixLength,
                                     " lowercase letters, digits or '-'"));
  }
  return absl::OkStatus();
}

absl::Status ValidateRouteId(absl::string_view field, absl::string_view id,
                             absl::string_view prefix) {
  if (!absl::StartsWith(id, prefix) || id.size() == prefix.size() ||
      id.size() > kMaxRouteIdLength || !std::all_of(id.begin(), id.end(), IsIdChar)) {
    return InvalidField(field, absl::StrCat(Quoted(id), " must be \"", prefix,
                                            "\" followed by lowercase letters, digits or '-', at "
                                            "most ",
                                            kMaxRouteIdLength, " characters in all"));
  }
  return absl::OkStatus();
}

absl::Status ValidateHost(absl::string_view field, absl::string_view host) {
  if (!IsDnsName(host)) {
    return InvalidField(field, absl::StrCat(Quoted(host),
                                            " is not a lowercase DNS name (labels of a-z, 0-9 "
                                            "and '-' joined by dots, at most ",
                                            kMaxHostLength, " characters)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateHostPort(absl::string_view field, absl::string_view address,
                              bool host_optional) {
  const auto bad = [&] {
    return InvalidField(field, absl::StrCat(Quoted(address), " is not ",
                                            host_optional ? "[host]:port" : "host:port",
                                            " (an IPv4 address, [IPv6 address] or DNS name, "
                                            "and a port of 1 to 65535)"));
  };
  if (address.size() > kMaxHostLength + 8) return bad();
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || !IsPort(address.substr(colon + 1))) return bad();
  absl::string_view host = address.substr(0, colon);
  if (host.empty()) return host_optional ? absl::OkStatus() : bad();
  if (absl::ConsumePrefix(&host, "[")) {
    if (!absl::ConsumeSuffix(&host, "]") || !IsAddress(AF_INET6, host)) return bad();
    return absl::OkStatus();
  }
  return IsDialHost(host) ? absl::OkStatus() : bad();
}

absl::Status ValidateRoute(absl::string_view field, const Route& route, absl::string_view prefix) {
  if (auto s = ValidateRouteId(absl::StrCat(field, ".id"), route.id, prefix); !s.ok()) return s;
  if (route.hosts.empty() || route.hosts.size() > kMaxHostsPerRoute) {
    return InvalidField(absl::StrCat(field, ".hosts"),
                        absl::StrCat("has ", route.hosts.size(), " hosts; 1 to ", kMaxHostsPerRoute,
                                     " are allowed"));
  }
  absl::flat_hash_set<absl::string_view> seen;
  for (size_t i = 0; i < route.hosts.size(); ++i) {
    const std::string host_field = absl::StrCat(field, ".hosts[", i, "]");
    if (auto s = ValidateHost(host_field, route.hosts[i]); !s.ok()) return s;
    if (!seen.insert(route.hosts[i]).second) {
      return InvalidField(host_field, absl::StrCat(Quoted(route.hosts[i]), " is listed twice"));
    }
  }
  return ValidateHostPort(absl::StrCat(field, ".upstream"), route.upstream,
                          /*host_optional=*/false);
}

absl::Status ValidateRouteSet(const std::vector<Route>& routes, absl::string_view prefix) {
  if (routes.size() > kMaxRoutes) {
    return InvalidField("desired", absl::StrCat("has ", routes.size(), " routes; at most ",
                                                kMaxRoutes, " are allowed"));
  }
  absl::flat_hash_set<absl::string_view> ids;
  absl::flat_hash_map<absl::string_view, absl::string_view> host_owner;
  for (size_t i = 0; i < routes.size(); ++i) {
    const std::string field = absl::StrCat("desired[", i, "]");
    if (auto s = ValidateRoute(field, routes[i], prefix); !s.ok()) return s;
    if (!ids.insert(routes[i].id).second) {
      return InvalidField(absl::StrCat(field, ".id"),
                          absl::StrCat(Quoted(routes[i].id), " is desired twice"));
    }
    for (size_t h = 0; h < routes[i].hosts.size(); ++h) {
      auto [it, inserted] = host_owner.emplace(routes[i].hosts[h], routes[i].id);
      if (!inserted) {
        return InvalidField(
            absl::StrCat(field, ".hosts[", h, "]"),
            absl::StrCat(Quoted(routes[i].hosts[h]), " is also a host of ", Quoted(it->second)));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace orchestrator::router
