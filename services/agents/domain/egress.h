#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "orchestrator/agents/v1/agents.pb.h"

namespace orchestrator::agents {

// A sandbox has no network of its own (a network namespace with only
// loopback): what it reaches outside, it reaches through the mesh's egress
// proxy, one host:port at a time, as its allowlist says.

// One host:port a sandbox may reach. `host` is lower-case: a DNS name or an
// IP literal (IPv6 without brackets).
struct EgressTarget {
  std::string host;
  int port = 0;

  std::string ToString() const;  // "host:port", "[v6]:port"
  bool operator==(const EgressTarget&) const = default;
};

// "host:port" or "[v6]:port"; INVALID_ARGUMENT saying what is wrong.
absl::StatusOr<EgressTarget> ParseEgressTarget(absl::string_view text);
// The host:port an http(s) URL names (default ports 80 / 443).
absl::StatusOr<EgressTarget> EgressTargetOfUrl(absl::string_view url);

// What one worker may reach.
struct EgressAllowlist {
  // At whatever address the host resolves to, loopback included: what the
  // operator configured (the model APIs, --agent_egress_allow).
  std::vector<EgressTarget> any_address;
  // Only at public addresses: what a user's request names (registries by
  // capability, WorkerConfig.egress_allow). Such a host that resolves to a
  // loopback, private, link-local or otherwise non-public address is
  // refused, so a user cannot point the proxy at the mesh's own services.
  std::vector<EgressTarget> public_only;

  bool empty() const { return any_address.empty() && public_only.empty(); }
};

// The operator's side of every worker's allowlist.
struct EgressGrants {
  // The model APIs' base URLs (the operator's ANTHROPIC_BASE_URL /
  // OPENAI_BASE_URL); empty = the real APIs.
  std::string anthropic_base_url;
  std::string openai_base_url;
  // host:port any networked worker may reach (trusted, any address).
  std::vector<std::string> extra;
};

// Package registries by capability, e.g. "npm" → registry.npmjs.org:443.
const std::map<std::string, std::vector<std::string>>& CapabilityRegistries();

// The capability that lets a worker fetch its own project's repository (the
// git host refuses an agent's push: the platform pushes what passed).
inline constexpr char kGitCapability[] = "git";

// Whether a worker built from `config` reaches its project's repository:
// it has the "git" capability, a project_id and a network.
bool ReachesProjectRepository(const v1::WorkerConfig& config);

// What a worker built from `config` may reach: its agent's model API, the
// operator's extra targets, the registries its capabilities name, its
// config's egress_allow and, when ReachesProjectRepository, the host:port
// of `repository_url` (its project's, as ProjectService records it; "" for
// none): at any address when that host is loopback (only the mesh, or an
// operator who allows local hosts, records such a URL), else public only.
// A repository URL the proxy cannot carry (ssh://, user@host:path) adds
// nothing. Empty for NETWORK_MODE_ISOLATED.
absl::StatusOr<EgressAllowlist> AllowlistFor(const v1::WorkerConfig& config,
                                             const EgressGrants& grants,
                                             absl::string_view repository_url = "");

// Where the egress proxy listens for one worker.
class EgressGateway {
 public:
  virtual ~EgressGateway() = default;
  // Opens `worker_id`'s way out: a unix socket, returned as its host path,
  // whose every connection is one proxied request or tunnel within `allow`,
  // logged with the worker id. Opening again replaces the earlier one.
  virtual absl::StatusOr<std::string> Open(const std::string& worker_id, EgressAllowlist allow) = 0;
  // Closes the socket and every connection made through it.
  virtual void Close(const std::string& worker_id) = 0;
};

}  // namespace orchestrator::agents
