#include "services/agents/domain/egress.h"

#include <arpa/inet.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace orchestrator::agents {
namespace {

constexpr char kAnthropicApi[] = "https://api.anthropic.com";
constexpr char kOpenAiApi[] = "https://api.openai.com/v1";
constexpr char kFactoryApi[] = "https://api.factory.ai";

bool IsDnsName(absl::string_view h) {
  if (h.empty() || h.size() > 253 || h.front() == '.' || h.front() == '-' || h.back() == '-') {
    return false;
  }
  return std::all_of(h.begin(), h.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-';
  });
}

bool IsIpv6Literal(absl::string_view h) {
  if (h.size() < 2 || h.size() > 45 || h.find(':') == absl::string_view::npos) return false;
  return std::all_of(h.begin(), h.end(), [](char c) {
    return absl::ascii_isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
  });
}

absl::Status Bad(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("'", text.substr(0, 300), "' is not host:port: ", why));
}

void AddUnique(std::vector<EgressTarget>* list, EgressTarget t) {
  if (std::find(list->begin(), list->end(), t) == list->end()) list->push_back(std::move(t));
}

// "localhost", a name under .localhost, 127.0.0.0/8 or ::1 (canonical forms
// only, as ParseEgressTarget leaves them).
bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost" || absl::EndsWith(host, ".localhost")) return true;
  unsigned char b[16];
  if (inet_pton(AF_INET, host.c_str(), b) == 1) return b[0] == 127;
  static constexpr unsigned char kLoopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return inet_pton(AF_INET6, host.c_str(), b) == 1 && std::equal(b, b + 16, kLoopback6);
}

}  // namespace

std::string EgressTarget::ToString() const {
  return host.find(':') != std::string::npos ? absl::StrCat("[", host, "]:", port)
                                             : absl::StrCat(host, ":", port);
}

absl::StatusOr<EgressTarget> ParseEgressTarget(absl::string_view text) {
  EgressTarget t;
  absl::string_view host, port;
  if (absl::StartsWith(text, "[")) {
    const size_t close = text.find("]:");
    if (close == absl::string_view::npos) return Bad(text, "an IPv6 address is [address]:port");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (!IsIpv6Literal(host)) return Bad(text, "not an IPv6 address");
  } else {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) return Bad(text, "the port is missing");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (!IsDnsName(host)) return Bad(text, "the host is not a DNS name or an IPv4 address");
  }
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c));
      })) {
    return Bad(text, "the port is not a number");
  }
  if (!absl::SimpleAtoi(port, &t.port) || t.port < 1 || t.port > 65535) {
    return Bad(text, "the port is not within 1-65535");
  }
  t.host = absl::AsciiStrToLower(host);
  return t;
}

absl::StatusOr<EgressTarget> EgressTargetOfUrl(absl::string_view url) {
  const std::string lower = absl::AsciiStrToLower(url.substr(0, 8));
  int default_port = 0;
  absl::string_view rest;
  if (absl::StartsWith(lower, "https://")) {
    default_port = 443;
    rest = url.substr(8);
  } else if (absl::StartsWith(lower, "http://")) {
    default_port = 80;
    rest = url.substr(7);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("'", url.substr(0, 300), "' is not an http:// or https:// URL"));
  }
  const absl::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (absl::StrContains(authority, "@")) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", url.substr(0, 300), "': credentials in a URL are not allowed"));
  }
  const bool has_port = absl::StartsWith(authority, "[") ? absl::StrContains(authority, "]:")
                                                         : absl::StrContains(authority, ":");
  if (has_port) return ParseEgressTarget(authority);
  return ParseEgressTarget(absl::StrCat(authority, ":", default_port));
}

const std::map<std::string, std::vector<std::string>>& CapabilityRegistries() {
  static const auto* const kTable = new std::map<std::string, std::vector<std::string>>{
      {"npm", {"registry.npmjs.org:443"}},
      {"pip", {"pypi.org:443", "files.pythonhosted.org:443"}},
      {"cargo", {"index.crates.io:443", "static.crates.io:443", "crates.io:443"}},
      {"go", {"proxy.golang.org:443", "sum.golang.org:443"}},
      {"gem", {"rubygems.org:443", "index.rubygems.org:443"}},
      {"maven", {"repo.maven.apache.org:443", "repo1.maven.org:443"}},
  };
  return *kTable;
}

bool ReachesProjectRepository(const v1::WorkerConfig& config) {
  return config.network_mode() != v1::NETWORK_MODE_ISOLATED && !config.project_id().empty() &&
         std::find(config.capabilities().begin(), config.capabilities().end(), kGitCapability) !=
             config.capabilities().end();
}

absl::StatusOr<EgressAllowlist> AllowlistFor(const v1::WorkerConfig& config,
                                             const EgressGrants& grants,
                                             absl::string_view repository_url) {
  EgressAllowlist allow;
  if (config.network_mode() == v1::NETWORK_MODE_ISOLATED) return allow;
  auto model_api = [&](const std::string& configured, const char* real) -> absl::Status {
    auto t = EgressTargetOfUrl(configured.empty() ? real : configured);
    if (!t.ok()) return t.status();
    AddUnique(&allow.any_address, *t);
    return absl::OkStatus();
  };
  absl::Status s;
  switch (config.agent_type()) {
    case v1::AGENT_TYPE_CLAUDE_CODE:
      s = model_api(grants.anthropic_base_url, kAnthropicApi);
      break;
    case v1::AGENT_TYPE_CODEX:
      s = model_api(grants.openai_base_url, kOpenAiApi);
      break;
    case v1::AGENT_TYPE_FACTORY_DROID:
      s.Update(model_api("", kFactoryApi));
      s.Update(model_api(grants.anthropic_base_url, kAnthropicApi));
      s.Update(model_api(grants.openai_base_url, kOpenAiApi));
      break;
    default:
      break;  // the scripted agent calls no model
  }
  if (!s.ok()) return s;
  for (const auto& e : grants.extra) {
    auto t = ParseEgressTarget(e);
    if (!t.ok()) return t.status();
    AddUnique(&allow.any_address, *t);
  }
  for (const auto& cap : config.capabilities()) {
    auto it = CapabilityRegistries().find(cap);
    if (it == CapabilityRegistries().end()) continue;
    for (const auto& e : it->second) AddUnique(&allow.public_only, *ParseEgressTarget(e));
  }
  for (int i = 0; i < config.egress_allow_size(); ++i) {
    auto t = ParseEgressTarget(config.egress_allow(i));
    if (!t.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("config.egress_allow[", i, "]: ", t.status().message()));
    }
    AddUnique(&allow.public_only, *t);
  }
  if (!repository_url.empty() && ReachesProjectRepository(config)) {
    if (auto t = EgressTargetOfUrl(repository_url); t.ok()) {
      AddUnique(IsLoopbackHost(t->host) ? &allow.any_address : &allow.public_only, *t);
    }
  }
  return allow;
}

}  // namespace orchestrator::agents
