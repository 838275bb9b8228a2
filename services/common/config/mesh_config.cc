#include "services/common/config/mesh_config.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace orchestrator {
namespace {

bool IsKnown(const std::vector<std::string>& known, absl::string_view component) {
  return std::find(known.begin(), known.end(), component) != known.end();
}

absl::Status CheckHostPort(absl::string_view flag, absl::string_view value) {
  if (absl::StartsWith(value, "unix:")) {
    if (value.size() > 5) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": unix: needs a socket path"));
  }
  size_t colon = value.rfind(':');
  int port = -1;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(value.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, " must be host:port or unix:/path, got '", value, "'"));
  }
  return absl::OkStatus();
}

}  // namespace

bool MeshConfig::Hosts(absl::string_view component) const {
  return std::find(services.begin(), services.end(), component) != services.end();
}

absl::Status ParseServices(absl::string_view spec, const std::vector<std::string>& known,
                           std::vector<std::string>* out) {
  out->clear();
  if (absl::StripAsciiWhitespace(spec) == "all") {
    *out = known;
    return absl::OkStatus();
  }
  for (absl::string_view part : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    std::string name(absl::StripAsciiWhitespace(part));
    if (!IsKnown(known, name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--services: unknown component '", name, "'; known: all, ", absl::StrJoin(known, ", ")));
    }
    if (std::find(out->begin(), out->end(), name) == out->end()) out->push_back(name);
  }
  if (out->empty()) return absl::InvalidArgumentError("--services: name at least one component");
  return absl::OkStatus();
}

absl::Status ParseJobOwnerLimits(absl::string_view spec, std::map<std::string, int>* out) {
  out->clear();
  for (absl::string_view part : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    std::vector<absl::string_view> kv = absl::StrSplit(part, '=');
    int limit = 0;
    std::string kind(absl::StripAsciiWhitespace(kv[0]));
    if (kv.size() != 2 || kind.empty() ||
        !absl::SimpleAtoi(absl::StripAsciiWhitespace(kv[1]), &limit) || limit < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--job_owner_limits: want kind=N with N >= 1, e.g. deploy=3; got '", part, "'"));
    }
    (*out)[kind] = limit;
  }
  return absl::OkStatus();
}

absl::Status MeshConfig::Validate(const std::vector<std::string>& known) const {
  if (auto s = CheckHostPort("listen", listen); !s.ok()) return s;
  if (services.empty())
    return absl::InvalidArgumentError("--services: name at least one component");
  for (const auto& s : services) {
    if (!IsKnown(known, s))
      return absl::InvalidArgumentError(absl::StrCat("--services: unknown '", s, "'"));
  }
  for (const auto& [component, addr] : remote_addrs) {
    if (!IsKnown(known, component)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown component '", component, "'"));
    }
    if (auto s = CheckHostPort(absl::StrCat(component, "_addr"), addr); !s.ok()) return s;
  }
  // Every component authenticates its callers through AdminService.
  if (!Hosts("admin") && !remote_addrs.contains("admin")) {
    return absl::InvalidArgumentError(
        "--admin_addr is required when admin is not in --services (tokens are verified by "
        "AdminService)");
  }
  if (mesh_credential_file.empty() && services.size() < known.size()) {
    return absl::InvalidArgumentError(
        "--mesh_credential_file is required unless this process hosts every component: the "
        "components prove to each other that they are the mesh with the secret it holds (the "
        "same file for every process, e.g. a Kubernetes Secret; make one with "
        "`openssl rand -hex 32`)");
  }
  if (Hosts("projects") && secrets_key_file.empty()) {
    return absl::InvalidArgumentError(
        "--secrets_key_file is required to host projects (project secrets are encrypted with it)");
  }
  if (drain_deadline.count() <= 0) {
    return absl::InvalidArgumentError("--drain_deadline must be positive");
  }
  if (call_deadline.count() <= 0) {
    return absl::InvalidArgumentError("--call_deadline must be positive");
  }
  if (executor_threads < 1 || executor_threads > 256) {
    return absl::InvalidArgumentError("--executor_threads must be between 1 and 256");
  }
  if (executor_queue < 1) return absl::InvalidArgumentError("--executor_queue must be positive");
  if (db_pool_size < 1 || db_pool_size > 200) {
    return absl::InvalidArgumentError("--db_pool_size must be between 1 and 200");
  }
  if (job_concurrency < 1 || job_concurrency > 1024) {
    return absl::InvalidArgumentError("--job_concurrency must be between 1 and 1024");
  }
  if (session_agent != "scripted" && session_agent != "claude-code" && session_agent != "codex" &&
      session_agent != "factory-droid") {
    return absl::InvalidArgumentError(
        "--session_agent must be scripted, claude-code, codex or factory-droid");
  }
  if (session_idle_pause.count() <= 0 || session_end_after <= session_idle_pause) {
    return absl::InvalidArgumentError(
        "--session_idle_pause must be positive and shorter than --session_end_after");
  }
  if (agent_runtime != "sandboxed" && agent_runtime != "unsandboxed" &&
      agent_runtime != "kubernetes") {
    return absl::InvalidArgumentError(
        "--agent_runtime must be sandboxed, unsandboxed or kubernetes");
  }
  if (agent_connect_timeout < std::chrono::milliseconds(100)) {
    return absl::InvalidArgumentError("--agent_connect_timeout must be at least 100ms");
  }
  if (job_lease < std::chrono::milliseconds(300)) {
    return absl::InvalidArgumentError("--job_lease must be at least 300ms");
  }
  return absl::OkStatus();
}

absl::Status ParseRateLimit(absl::string_view flag, absl::string_view spec,
                            std::pair<double, double>* out) {
  if (spec == "0") {
    *out = {0, 0};
    return absl::OkStatus();
  }
  std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(spec, '/');
  double rate = 0, burst = 0;
  if (!absl::SimpleAtod(parts.first, &rate) || !absl::SimpleAtod(parts.second, &burst) ||
      !(rate > 0) || !(burst >= 1) || rate > 1e6 || burst > 1e6) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": '", spec, "' is not RATE/BURST (calls per second > 0, burst >= 1), or 0"));
  }
  *out = {rate, burst};
  return absl::OkStatus();
}

}  // namespace orchestrator
