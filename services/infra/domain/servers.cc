#include "services/infra/domain/servers.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "re2/re2.h"

namespace orchestrator::infra {
namespace {

// A server's name: one DNS label, lowercase.
bool IsServerName(const std::string& name) {
  static const RE2* const kPattern = new RE2("[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?");
  return RE2::FullMatch(name, *kPattern);
}

// A login name as useradd takes it (no leading '-': never an ssh option).
bool IsUserName(const std::string& user) {
  static const RE2* const kPattern = new RE2("[a-z_][a-z0-9_.-]{0,31}");
  return RE2::FullMatch(user, *kPattern);
}

// A host name or IPv4 address: dot-separated labels of letters, digits and
// '-', none starting with '-'.
bool IsHostName(const std::string& host) {
  static const RE2* const kPattern =
      new RE2("[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\\.?");
  return host.size() <= 253 && RE2::FullMatch(host, *kPattern);
}

bool IsIpv6(const std::string& host) {
  static const RE2* const kPattern = new RE2("[0-9A-Fa-f:.]{2,45}");
  return host.find(':') != std::string::npos && RE2::FullMatch(host, *kPattern);
}

// What a private key looks like: an OpenSSH or PEM private key block.
bool LooksLikePrivateKey(const std::string& key) {
  const std::string trimmed(absl::StripAsciiWhitespace(key));
  return absl::StartsWith(trimmed, "-----BEGIN ") &&
         absl::StrContains(trimmed, "PRIVATE KEY-----") &&
         absl::EndsWith(trimmed, "PRIVATE KEY-----") && trimmed.find('\0') == std::string::npos;
}

// Where a server serves its projects: a domain its releases' host names
// end in, and where its Caddy listens.
absl::Status CheckServing(const v1::Server& in) {
  const std::string domain(absl::StripSuffix(in.domain(), "."));
  if (domain.empty() || !IsHostName(domain) || domain.find('.') == std::string::npos ||
      domain.size() > 200) {
    return absl::InvalidArgumentError(
        "server.domain: required: the domain its projects are served under, e.g. "
        "\"apps.example.com\" (a release is http://<project>.<domain>; *.<domain> must resolve to "
        "the server)");
  }
  if (in.router_listen().empty()) return absl::OkStatus();
  const size_t colon = in.router_listen().rfind(':');
  int port = 0;
  const std::string host = colon == std::string::npos ? "" : in.router_listen().substr(0, colon);
  // The mesh checks a route on the server's loopback: Caddy must listen
  // there (every address, or loopback only).
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(in.router_listen().substr(colon + 1), &port) || port < 1 || port > 65535 ||
      (!host.empty() && host != "0.0.0.0" && host != "127.0.0.1" && host != "localhost")) {
    return absl::InvalidArgumentError(
        "server.router_listen: where the server's Caddy serves the projects: \":PORT\" (every "
        "address), or \"127.0.0.1:PORT\" behind a proxy of yours (empty: \":80\")");
  }
  return absl::OkStatus();
}

// The ports a registered server allocates: like --local_port_range.
constexpr int kLowestPort = 1024;

}  // namespace

absl::StatusOr<SshAddress> ParseSshAddress(const std::string& address) {
  const auto bad = [](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("server.address: ", why));
  };
  if (address.empty()) return bad("required: a host name or address, with :port if not 22");
  SshAddress out;
  std::string port;
  if (address.front() == '[') {
    const size_t close = address.find(']');
    if (close == std::string::npos) return bad("an IPv6 address in [] lacks its ']'");
    out.host = address.substr(1, close - 1);
    const std::string rest = address.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("only :port may follow an IPv6 address in []");
      port = rest.substr(1);
    }
    if (!IsIpv6(out.host)) return bad("not an IPv6 address within []");
  } else if (std::count(address.begin(), address.end(), ':') > 1) {
    out.host = address;
    if (!IsIpv6(out.host)) return bad("not an IPv6 address (write [address]:port for a port)");
  } else {
    std::pair<std::string, std::string> parts = absl::StrSplit(address, absl::MaxSplits(':', 1));
    out.host = parts.first;
    if (address.find(':') != std::string::npos) {
      port = parts.second;
      if (port.empty()) return bad("an empty port after ':'");
    }
    if (!IsHostName(out.host)) {
      return bad("a host name (letters, digits, '-' and '.') or an IPv4 address, with :port");
    }
  }
  if (!port.empty() &&
      (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
       !absl::SimpleAtoi(port, &out.port) || out.port < 1 || out.port > 65535)) {
    return bad("the SSH port must be 1-65535");
  }
  return out;
}

std::string ServerKeyAssociatedData(const std::string& server_id) {
  return absl::StrCat("infra/servers/", server_id, "/ssh_private_key");
}

absl::StatusOr<v1::Server> ServerCatalog::Register(const Principal& caller,
                                                   const v1::RegisterServerRequest& request) {
  if (!request.request_id().empty()) {
    auto earlier = store_->FindServerByRequest(caller.user_id, request.request_id());
    if (!earlier.ok()) return earlier.status();
    if (*earlier) {
      if ((*earlier)->name() != request.server().name()) {
        return absl::FailedPreconditionError(absl::StrCat("request_id '", request.request_id(),
                                                          "' was used for another server (",
                                                          (*earlier)->id(), ")"));
      }
      return **earlier;
    }
  }
  if (!request.has_server()) return absl::InvalidArgumentError("server: required");
  const v1::Server& in = request.server();
  switch (in.kind()) {
    case v1::SERVER_KIND_SSH:
    case v1::SERVER_KIND_UNSPECIFIED:  // SSH is what one registers
      break;
    case v1::SERVER_KIND_LOCAL:
      return absl::InvalidArgumentError(
          "server.kind: LOCAL is the machine the mesh runs on, which the platform registers itself "
          "(server \"local\"); register other machines as SSH");
    case v1::SERVER_KIND_KUBERNETES:
      return absl::UnimplementedError(
          "server.kind: KUBERNETES servers are not supported yet; register an SSH server");
    default:
      return absl::InvalidArgumentError("server.kind: unknown kind");
  }
  if (!IsServerName(in.name())) {
    return absl::InvalidArgumentError(
        "server.name: 1 to 63 of a-z, 0-9 and '-', starting and ending with a letter or digit");
  }
  if (in.name() == kLocalServerName) {
    return absl::InvalidArgumentError(
        "server.name: \"local\" is the platform's server (the machine the mesh runs on): choose "
        "another name");
  }
  auto address = ParseSshAddress(in.address());
  if (!address.ok()) return address.status();
  if (!IsUserName(in.ssh_user())) {
    return absl::InvalidArgumentError(
        "server.ssh_user: required: a login name (a-z, 0-9, '_', '.', '-', at most 32, not "
        "starting with '-' or a digit) that is root or may sudo");
  }
  if (in.port_range_start() < kLowestPort || in.port_range_start() > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "server.port_range_start: required: the first port to allocate, ", kLowestPort, "-65535"));
  }
  if (in.port_range_end() < in.port_range_start() || in.port_range_end() > 65535) {
    return absl::InvalidArgumentError(
        "server.port_range_end: required: the last port to allocate, from port_range_start to "
        "65535");
  }
  if (auto s = CheckServing(in); !s.ok()) return s;
  if (request.ssh_private_key().empty()) {
    return absl::InvalidArgumentError(
        "ssh_private_key: required: the private key that logs in as server.ssh_user");
  }
  if (!LooksLikePrivateKey(request.ssh_private_key())) {
    return absl::InvalidArgumentError(
        "ssh_private_key: not a private key (an OpenSSH or PEM \"-----BEGIN ... PRIVATE "
        "KEY-----\" block, unencrypted)");
  }
  if (keys_ == nullptr) {
    return absl::FailedPreconditionError(
        "this mesh cannot keep private keys: start the infra component with --secrets_key_file");
  }
  v1::Server server;
  server.set_id(NewId("srv_"));
  server.set_owner_id(caller.user_id);
  server.set_name(in.name());
  server.set_kind(v1::SERVER_KIND_SSH);
  server.set_address(in.address());
  server.set_ssh_user(in.ssh_user());
  server.set_port_range_start(in.port_range_start());
  server.set_port_range_end(in.port_range_end());
  server.set_domain(absl::AsciiStrToLower(absl::StripSuffix(in.domain(), ".")));
  server.set_router_listen(in.router_listen());
  server.set_status(v1::SERVER_STATUS_REGISTERED);
  server.set_status_reason("registered: provision it before deploying to it");
  std::string key = request.ssh_private_key();
  if (key.back() != '\n') key += '\n';  // ssh refuses a key file without it
  const std::string sealed =
      absl::Base64Escape(keys_->Seal(key, ServerKeyAssociatedData(server.id())));
  auto made = store_->InsertServer(server, sealed, request.request_id());
  if (made.ok() || made.status().code() != absl::StatusCode::kAlreadyExists) return made;
  if (!request.request_id().empty()) {
    auto earlier = store_->FindServerByRequest(caller.user_id, request.request_id());
    if (earlier.ok() && *earlier && (*earlier)->name() == in.name()) return **earlier;
  }
  return absl::AlreadyExistsError(
      absl::StrCat("server.name: you have a server named '", in.name(), "' already"));
}

absl::StatusOr<v1::Server> ServerCatalog::EnsureLocal(int first, int last,
                                                      const std::string& flag) {
  if (first < 1024 || last > 65535 || first > last) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": a range FIRST-LAST within 1024-65535, FIRST <= LAST"));
  }
  v1::Server local;
  local.set_name(kLocalServerName);
  local.set_kind(v1::SERVER_KIND_LOCAL);
  local.set_port_range_start(first);
  local.set_port_range_end(last);
  local.set_status(v1::SERVER_STATUS_READY);
  local.set_status_reason("the machine the mesh runs on");
  return store_->UpsertPlatformServer(local);
}

absl::StatusOr<v1::Server> ServerCatalog::Get(const Principal& caller,
                                              const std::string& server_id) const {
  if (server_id.empty()) return absl::InvalidArgumentError("server_id: required");
  auto server = store_->GetServer(server_id);
  if (!server.ok()) return server.status();
  if (server->owner_id() != kPlatformOwner && !CanSeeOwner(caller, server->owner_id())) {
    return absl::NotFoundError(absl::StrCat("server '", server_id, "' not found"));
  }
  return server;
}

absl::StatusOr<v1::ListServersResponse> ServerCatalog::List(
    const Principal& caller, const v1::ListServersRequest& request) const {
  auto page = ParsePageRequest(request.page_size(), request.page_token(), "", 50, 500);
  if (!page.ok()) return page.status();
  ServerFilter filter;
  filter.owner_id = caller.user_id;
  filter.all_owners = caller.admin;
  auto rows = store_->ListServers(filter, *page);
  if (!rows.ok()) return rows.status();
  v1::ListServersResponse response;
  for (auto& s : rows->items) *response.add_servers() = std::move(s);
  if (!rows->last_keys.empty()) response.set_next_page_token(MakePageToken("", rows->last_keys));
  return response;
}

absl::StatusOr<v1::Server> ServerCatalog::Default(const Principal& caller) const {
  PageRequest page;
  page.page_size = 500;
  ServerFilter filter;
  filter.owner_id = caller.user_id;
  auto servers = store_->ListServers(filter, page);
  if (!servers.ok()) return servers.status();
  for (const auto& server : servers->items) {
    if (server.owner_id() == kPlatformOwner && server.name() == kLocalServerName &&
        server.status() == v1::SERVER_STATUS_READY) {
      return server;
    }
  }
  return absl::FailedPreconditionError(
      "no server takes deploys here: name a READY server in server_id (infra servers)");
}

}  // namespace orchestrator::infra
