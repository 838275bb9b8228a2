#include "services/projects/domain/project_catalog.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/auth/mesh_identity.h"
#include "services/common/pagination/page_budget.h"
#include "services/common/validation/fields.h"
#include "services/common/validation/request_bounds.h"

namespace orchestrator::projects {
namespace {

constexpr size_t kMaxDisplayName = 200;
constexpr size_t kMaxDescription = 4096;
constexpr size_t kMaxRepositoryUrl = 2048;
constexpr size_t kMaxSecretValue = 64 * 1024;
constexpr size_t kMaxTemplateVersion = 64;
constexpr size_t kMaxTemplateAnswers = 64;
constexpr size_t kMaxAnswerName = 64;
constexpr size_t kMaxAnswerValue = 1024;
constexpr size_t kMaxContractPath = 256;
constexpr int kMaxTestCommandArgs = 32;
constexpr size_t kMaxTestCommandArg = 512;
constexpr int kMaxRequiredSecrets = 32;
constexpr int32_t kDefaultPageSize = 50;
constexpr int32_t kMaxPageSize = 500;

// The fields UpdateProject may change; name and ids are immutable.
const std::set<std::string, std::less<>>& MutableFields() {
  static const auto* fields = new std::set<std::string, std::less<>>{
      "display_name",     "description",      "status",       "repository_url",  "template_id",
      "template_version", "template_answers", "run_contract", "change_delivery", "deploy_fix"};
  return *fields;
}

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

absl::Status ValidateStatus(absl::string_view field, int status, bool allow_unspecified) {
  if (!v1::ProjectStatus_IsValid(status)) {
    return InvalidField(field, absl::StrCat("unknown status ", status));
  }
  if (!allow_unspecified && status == v1::PROJECT_STATUS_UNSPECIFIED) {
    return InvalidField(field, "must be set to a PROJECT_STATUS_* value");
  }
  return absl::OkStatus();
}

enum class HostKind { kInvalid, kPublic, kLocal };

bool IsLocalIpv4(const unsigned char b[4]) {
  return b[0] == 0 || b[0] == 10 || b[0] == 127 || (b[0] == 100 && (b[1] & 0xc0) == 64) ||
         (b[0] == 169 && b[1] == 254) || (b[0] == 172 && (b[1] & 0xf0) == 16) ||
         (b[0] == 192 && b[1] == 168) || b[0] >= 224;
}

// Whether `host` is a host name or address a repository may live at. Only
// canonical forms count as addresses ("127.1" or "2130706433" are neither
// names nor addresses), so no spelling of a local address slips through.
HostKind ClassifyHost(absl::string_view host) {
  if (host.empty() || host.size() > 253) return HostKind::kInvalid;
  if (host.front() == '[') {
    if (host.back() != ']') return HostKind::kInvalid;
    const std::string literal(host.substr(1, host.size() - 2));
    unsigned char b[16];
    if (inet_pton(AF_INET6, literal.c_str(), b) != 1) return HostKind::kInvalid;
    static constexpr unsigned char kZero[16] = {};
    const bool unspecified_or_loopback = std::memcmp(b, kZero, 15) == 0 && b[15] <= 1;
    const bool v4_mapped = std::memcmp(b, kZero, 10) == 0 && b[10] == 0xff && b[11] == 0xff;
    if (unspecified_or_loopback || (b[0] & 0xfe) == 0xfc ||
        (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || b[0] == 0xff ||
        (v4_mapped && IsLocalIpv4(b + 12))) {
      return HostKind::kLocal;
    }
    return HostKind::kPublic;
  }
  const std::string name = absl::AsciiStrToLower(host);
  unsigned char b[4];
  if (inet_pton(AF_INET, name.c_str(), b) == 1) {
    return IsLocalIpv4(b) ? HostKind::kLocal : HostKind::kPublic;
  }
  in_addr legacy;
  if (inet_aton(name.c_str(), &legacy) != 0) return HostKind::kInvalid;  // "0x7f000001", "127.1"
  size_t label_start = 0;
  for (size_t i = 0; i <= name.size(); ++i) {
    if (i < name.size() && name[i] != '.') {
      const char c = name[i];
      if (!absl::ascii_isalnum(c) && c != '-') return HostKind::kInvalid;
      continue;
    }
    const absl::string_view label = absl::string_view(name).substr(label_start, i - label_start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return HostKind::kInvalid;
    }
    label_start = i + 1;
  }
  // The top-level label of a name is never all digits (that is an address).
  const absl::string_view tld = absl::string_view(name).substr(name.rfind('.') + 1);
  if (std::all_of(tld.begin(), tld.end(), absl::ascii_isdigit)) return HostKind::kInvalid;
  if (name == "localhost" || absl::EndsWith(name, ".localhost") || absl::EndsWith(name, ".local") ||
      absl::EndsWith(name, ".internal")) {
    return HostKind::kLocal;
  }
  return HostKind::kPublic;
}

absl::Status ValidateMutableField(const v1::Project& p, absl::string_view path,
                                  const RepositoryUrlPolicy& urls) {
  if (path == "display_name")
    return CheckText("project.display_name", p.display_name(), kMaxDisplayName);
  if (path == "description")
    return CheckText("project.description", p.description(), kMaxDescription);
  if (path == "status") return ValidateStatus("project.status", p.status(), false);
  if (path == "repository_url")
    return ValidateRepositoryUrl("project.repository_url", p.repository_url(), urls);
  if (path == "template_id") return ValidateTemplateId("project.template_id", p.template_id());
  if (path == "template_version") {
    return ValidateTemplateVersion("project.template_version", p.template_version());
  }
  if (path == "template_answers") {
    return ValidateTemplateAnswers("project.template_answers", p.template_answers());
  }
  if (path == "run_contract") return ValidateRunContract("project.run_contract", p.run_contract());
  if (path == "change_delivery") {
    if (!v1::ChangeDelivery_IsValid(p.change_delivery())) {
      return InvalidField("project.change_delivery",
                          absl::StrCat("unknown change delivery ", p.change_delivery()));
    }
    return absl::OkStatus();
  }
  if (path == "deploy_fix") {
    if (!v1::DeployFix_IsValid(p.deploy_fix())) {
      return InvalidField("project.deploy_fix",
                          absl::StrCat("unknown deploy fix ", p.deploy_fix()));
    }
    return absl::OkStatus();
  }
  return InvalidField("update_mask", absl::StrCat("unknown field '", path, "'"));
}

std::string ListFilters(const std::string& owner, int status) {
  return absl::StrCat("owner=", owner, ";status=", status);
}

std::string SecretAssociatedData(absl::string_view project_id, absl::string_view name) {
  return absl::StrCat(project_id, "/", name);
}

// Printable ASCII without spaces.
bool IsPrintableToken(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x21 && c <= 0x7e; });
}

bool IsUnsetContract(const common::v1::RunContract& c) {
  return c.build_file().empty() && c.port() == 0 && c.health_path().empty() &&
         c.test_command().empty() && c.required_secrets().empty();
}

}  // namespace

absl::Status ValidateTemplateVersion(absl::string_view field, absl::string_view version) {
  if (version.empty()) return absl::OkStatus();
  constexpr absl::string_view kShape =
      "must be a short version such as '1.2.0' or 'v2-rc.1' (letters, digits, '.', '-', '_', "
      "'+', starting with a letter or digit)";
  if (version.size() > kMaxTemplateVersion) {
    return InvalidField(field, absl::StrCat("is longer than ", kMaxTemplateVersion, " characters"));
  }
  if (!absl::ascii_isalnum(version.front()) || absl::StrContains(version, "..")) {
    return InvalidField(field, kShape);
  }
  for (char c : version) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '-' && c != '_' && c != '+') {
      return InvalidField(field, kShape);
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateTemplateAnswers(
    absl::string_view field, const google::protobuf::Map<std::string, std::string>& answers) {
  if (answers.size() > kMaxTemplateAnswers) {
    return InvalidField(field, absl::StrCat("at most ", kMaxTemplateAnswers, " are allowed"));
  }
  // Sorted, so the same request always names the same answer first.
  std::vector<absl::string_view> names;
  for (const auto& [name, value] : answers) names.push_back(name);
  std::sort(names.begin(), names.end());
  for (absl::string_view name : names) {
    bool valid = !name.empty() && name.size() <= kMaxAnswerName && name.front() >= 'a' &&
                 name.front() <= 'z';
    for (char c : name) valid = valid && (IsLowerAlnum(c) || c == '_');
    if (!valid) {
      const std::string shown = IsPrintableToken(name)
                                    ? absl::StrCat("'", Truncated(name, kMaxAnswerName), "'")
                                    : "a key";
      return InvalidField(field, absl::StrCat(shown,
                                              " is not a question name (lowercase letters, "
                                              "digits and '_', starting with a letter, at most ",
                                              kMaxAnswerName, " characters)"));
    }
    const std::string element = absl::StrCat(field, "[\"", name, "\"]");
    const std::string& value = answers.at(std::string(name));
    if (value.size() > kMaxAnswerValue) {
      return InvalidField(element, absl::StrCat("is ", value.size(), " bytes; at most ",
                                                kMaxAnswerValue, " are allowed"));
    }
    if (!IsHumanLine(value)) {
      return InvalidField(element, "must be one line of text, without control characters");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateRunContract(absl::string_view field, const common::v1::RunContract& c) {
  // All empty: the project has no contract (yet).
  if (IsUnsetContract(c)) return absl::OkStatus();
  const auto sub = [field](absl::string_view name) { return absl::StrCat(field, ".", name); };
  if (c.port() < 1 || c.port() > 65535) {
    return InvalidField(sub("port"), "must be between 1 and 65535 when a run contract is set");
  }
  if (!c.health_path().empty()) {
    if (c.health_path().size() > kMaxContractPath) {
      return InvalidField(sub("health_path"),
                          absl::StrCat("is longer than ", kMaxContractPath, " characters"));
    }
    if (c.health_path().front() != '/' || !IsPrintableToken(c.health_path())) {
      return InvalidField(sub("health_path"),
                          "must be a URL path starting with '/' without spaces, e.g. '/healthz'");
    }
  }
  if (!c.build_file().empty()) {
    const absl::string_view build_file = c.build_file();
    if (build_file.size() > kMaxContractPath) {
      return InvalidField(sub("build_file"),
                          absl::StrCat("is longer than ", kMaxContractPath, " characters"));
    }
    if (!IsPrintableToken(build_file) || absl::StrContains(build_file, '\\')) {
      return InvalidField(sub("build_file"),
                          "must be a path without spaces or backslashes, e.g. 'Containerfile'");
    }
    if (build_file.front() == '/') {
      return InvalidField(sub("build_file"), "must be relative to the repository's root");
    }
    for (absl::string_view part : absl::StrSplit(build_file, '/')) {
      if (part == "..") {
        return InvalidField(sub("build_file"), "must stay inside the repository (no '..')");
      }
    }
  }
  if (c.test_command().empty() || c.test_command(0).empty()) {
    return InvalidField(sub("test_command"),
                        "is required when a run contract is set: the program and its arguments, "
                        "e.g. [\"python3\", \"-m\", \"unittest\"]");
  }
  if (c.test_command_size() > kMaxTestCommandArgs) {
    return InvalidField(sub("test_command"),
                        absl::StrCat("at most ", kMaxTestCommandArgs, " arguments are allowed"));
  }
  for (int i = 0; i < c.test_command_size(); ++i) {
    const std::string& arg = c.test_command(i);
    const std::string element = absl::StrCat(sub("test_command"), "[", i, "]");
    if (arg.size() > kMaxTestCommandArg) {
      return InvalidField(element, absl::StrCat("is ", arg.size(), " bytes; at most ",
                                                kMaxTestCommandArg, " are allowed"));
    }
    if (!IsHumanLine(arg)) {
      return InvalidField(element, "must be one line of text, without control characters");
    }
  }
  if (c.required_secrets_size() > kMaxRequiredSecrets) {
    return InvalidField(sub("required_secrets"),
                        absl::StrCat("at most ", kMaxRequiredSecrets, " are allowed"));
  }
  std::set<absl::string_view> seen;
  for (int i = 0; i < c.required_secrets_size(); ++i) {
    const std::string element = absl::StrCat(sub("required_secrets"), "[", i, "]");
    if (auto s = ValidateSecretName(element, c.required_secrets(i)); !s.ok()) return s;
    if (!seen.insert(c.required_secrets(i)).second) {
      return InvalidField(element, absl::StrCat("names '", c.required_secrets(i), "' twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateTemplateId(absl::string_view field, absl::string_view id) {
  if (id.empty()) return absl::OkStatus();
  constexpr absl::string_view kShape = "must look like 'python-http' or 'python-http@1.2.0'";
  if (id.size() > 128) return InvalidField(field, "is longer than 128 characters");
  const size_t at = id.find('@');
  const absl::string_view name = id.substr(0, at);
  if (name.empty() || !IsLowerAlnum(name.front())) return InvalidField(field, kShape);
  for (char c : name) {
    if (!IsLowerAlnum(c) && c != '-' && c != '_') return InvalidField(field, kShape);
  }
  if (at == absl::string_view::npos) return absl::OkStatus();
  // A version: letters, digits, '.', '-', '_', starting with a letter or digit.
  const absl::string_view version = id.substr(at + 1);
  if (version.empty() || !absl::ascii_isalnum(version.front()) ||
      absl::StrContains(version, "..")) {
    return InvalidField(field, kShape);
  }
  for (char c : version) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '-' && c != '_') {
      return InvalidField(field, kShape);
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateProjectName(absl::string_view field, absl::string_view name) {
  if (name.empty()) return InvalidField(field, "is required");
  if (name.size() < 3 || name.size() > 63) {
    return InvalidField(field, "must be 3 to 63 characters long");
  }
  if (name.front() < 'a' || name.front() > 'z') {
    return InvalidField(field, "must start with a lowercase letter");
  }
  if (name.back() == '-') return InvalidField(field, "must not end with a hyphen");
  for (char c : name) {
    if (!IsLowerAlnum(c) && c != '-') {
      return InvalidField(field, "may contain only lowercase letters, digits and hyphens");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSecretName(absl::string_view field, absl::string_view name) {
  if (name.empty()) return InvalidField(field, "is required");
  if (name.size() > 128) return InvalidField(field, "is longer than 128 characters");
  if (name.front() < 'A' || name.front() > 'Z') {
    return InvalidField(field, "must start with an uppercase letter");
  }
  for (char c : name) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) {
      return InvalidField(field,
                          "may contain only A-Z, 0-9 and '_' (an environment variable name)");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateRepositoryUrl(absl::string_view field, absl::string_view url,
                                   const RepositoryUrlPolicy& policy) {
  if (url.empty()) return absl::OkStatus();
  if (url.size() > kMaxRepositoryUrl) {
    return InvalidField(field, absl::StrCat("is longer than ", kMaxRepositoryUrl, " characters"));
  }
  for (unsigned char c : url) {
    if (c <= 0x20 || c >= 0x7f)
      return InvalidField(field, "must not contain spaces, control or non-ASCII characters");
  }
  constexpr absl::string_view kShape =
      "must be an https://host/path, ssh://[user@]host/path or user@host:path URL";
  absl::string_view authority, path;
  bool ssh = false, http = false;
  if (const size_t scheme_end = url.find("://"); scheme_end != absl::string_view::npos) {
    const absl::string_view scheme = url.substr(0, scheme_end);
    ssh = scheme == "ssh";
    http = scheme == "http";
    if (scheme != "https" && !ssh && !(http && policy.allow_local_hosts)) {
      return InvalidField(field, kShape);
    }
    const absl::string_view rest = url.substr(scheme_end + 3);
    const size_t slash = rest.find('/');
    if (slash == absl::string_view::npos) return InvalidField(field, kShape);
    authority = rest.substr(0, slash);
    path = rest.substr(slash + 1);
  } else {
    // scp-like syntax: user@host:path (never a password: there is no place for one).
    ssh = true;
    const size_t colon = url.find(':');
    const size_t at = url.find('@');
    if (at == absl::string_view::npos || colon == absl::string_view::npos || colon < at) {
      return InvalidField(field, kShape);
    }
    authority = url.substr(0, colon);
    path = url.substr(colon + 1);
  }
  if (path.empty() || path.front() == '-') return InvalidField(field, kShape);
  absl::string_view host = authority;
  if (const size_t at = authority.rfind('@'); at != absl::string_view::npos) {
    const absl::string_view userinfo = authority.substr(0, at);
    host = authority.substr(at + 1);
    // Credentials in a URL are stored and shown to everyone who can read the
    // project; they belong in a project secret.
    if (!ssh) {
      return InvalidField(field, "must not carry credentials (user@); store them as a secret");
    }
    if (userinfo.find(':') != absl::string_view::npos) {
      return InvalidField(field, "must not carry a password; store it as a secret");
    }
    if (userinfo.empty() || userinfo.front() == '-') return InvalidField(field, kShape);
    for (char c : userinfo) {
      if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-') {
        return InvalidField(field, kShape);
      }
    }
  }
  if (!host.empty() && host.front() != '[') {
    if (const size_t colon = host.rfind(':'); colon != absl::string_view::npos) {
      int port = 0;
      if (!absl::SimpleAtoi(host.substr(colon + 1), &port) || port < 1 || port > 65535) {
        return InvalidField(field, "has a bad port");
      }
      host = host.substr(0, colon);
    }
  } else if (const size_t close = host.find(']'); close != absl::string_view::npos) {
    const absl::string_view port = host.substr(close + 1);
    int n = 0;
    if (!port.empty() &&
        (port.front() != ':' || !absl::SimpleAtoi(port.substr(1), &n) || n < 1 || n > 65535)) {
      return InvalidField(field, "has a bad port");
    }
    host = host.substr(0, close + 1);
  }
  auto kind = ClassifyHost(host);
  if (kind == HostKind::kInvalid) return InvalidField(field, "has no valid host name");
  if (kind == HostKind::kLocal && !policy.allow_local_hosts) {
    return InvalidField(field,
                        "must name a public host, not a loopback, link-local or private address");
  }
  if (http && kind != HostKind::kLocal) {
    return InvalidField(field, "must use https:// (plain http:// only for local hosts)");
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Project> ProjectCatalog::Visible(const Principal& caller,
                                                    absl::string_view field,
                                                    absl::string_view project_id) {
  if (auto s = RequireNonEmpty(field, project_id); !s.ok()) return s;
  if (auto s = CheckToken(field, project_id); !s.ok()) return s;
  absl::StatusOr<v1::Project> project = absl::NotFoundError("");
  if (CanReachProject(caller, project_id)) project = store_->Get(project_id);
  if (project.ok() && !CanSeeOwner(caller, project->owner_id())) {
    project = absl::NotFoundError("");
  }
  if (absl::IsNotFound(project.status())) {
    return absl::NotFoundError(absl::StrCat("project '", project_id, "' not found"));
  }
  return project;
}

absl::Status ProjectCatalog::CheckChangeDelivery(const v1::Project& project) const {
  if (project.change_delivery() != v1::CHANGE_DELIVERY_PULL_REQUEST) return absl::OkStatus();
  const PullRequestHost& github = options_.pull_requests;
  if (!project.repository_url().empty() && github.holds && github.holds(project.repository_url())) {
    return absl::OkStatus();
  }
  const std::string where = github.name.empty()
                                ? "the platform's GitHub"
                                : absl::StrCat("the platform's GitHub (", github.name, ")");
  // Never the URL itself: what a user typed is not repeated back in errors.
  return absl::FailedPreconditionError(absl::StrCat(
      "project.change_delivery: CHANGE_DELIVERY_PULL_REQUEST opens pull requests on ", where,
      project.repository_url().empty() ? ", and the project has no repository yet"
                                       : ", and the project's repository_url is not there",
      ": set repository_url to its https:// URL on it, or use CHANGE_DELIVERY_FAST_FORWARD "
      "(the default branch is fast-forwarded)"));
}

absl::StatusOr<v1::Project> ProjectCatalog::Create(const Principal& caller,
                                                   const v1::CreateProjectRequest& req) {
  const v1::Project& in = req.project();
  if (!caller.project_id.empty()) {
    return absl::PermissionDeniedError(
        "this token is limited to one project (a worker's) and creates no others");
  }
  if (auto s = ValidateProjectName("project.name", in.name()); !s.ok()) return s;
  for (absl::string_view path : MutableFields()) {
    if (path == "status") continue;
    if (auto s = ValidateMutableField(in, path, options_.repository_urls); !s.ok()) return s;
  }
  if (auto s = ValidateStatus("project.status", in.status(), true); !s.ok()) return s;
  if (auto s = CheckToken("request_id", req.request_id()); !s.ok()) return s;

  v1::Project project;
  project.set_id(NewId("prj_"));
  project.set_owner_id(caller.user_id);
  project.set_name(in.name());
  project.set_display_name(in.display_name());
  project.set_description(in.description());
  project.set_status(in.status() == v1::PROJECT_STATUS_UNSPECIFIED ? v1::PROJECT_STATUS_CREATED
                                                                   : in.status());
  project.set_repository_url(in.repository_url());
  project.set_template_id(in.template_id());
  project.set_template_version(in.template_version());
  *project.mutable_template_answers() = in.template_answers();
  if (!IsUnsetContract(in.run_contract())) *project.mutable_run_contract() = in.run_contract();
  project.set_change_delivery(in.change_delivery());
  if (auto s = CheckChangeDelivery(project); !s.ok()) return s;
  project.set_deploy_fix(in.deploy_fix());
  auto created = store_->Insert(project, req.request_id());
  if (absl::IsAlreadyExists(created.status())) {
    return absl::AlreadyExistsError(
        absl::StrCat("project.name: you already have a project named '", in.name(), "'"));
  }
  return created;
}

absl::StatusOr<v1::Project> ProjectCatalog::Get(const Principal& caller,
                                                const v1::GetProjectRequest& req) {
  return Visible(caller, "project_id", req.project_id());
}

absl::StatusOr<v1::ListProjectsResponse> ProjectCatalog::List(const Principal& caller,
                                                              const v1::ListProjectsRequest& req) {
  if (auto s = ValidateStatus("status", req.status(), true); !s.ok()) return s;
  if (auto s = CheckToken("owner_id", req.owner_id()); !s.ok()) return s;
  auto owner = OwnerFilter(caller, req.owner_id());
  if (!owner.ok()) return owner.status();
  ProjectFilter filter{*owner, req.status()};
  const std::string filters = ListFilters(filter.owner_id, filter.status);
  auto page =
      ParsePageRequest(req.page_size(), req.page_token(), filters, kDefaultPageSize, kMaxPageSize);
  if (!page.ok()) return page.status();
  if (!caller.project_id.empty()) return ListReachable(caller, filter, *page);
  auto rows = store_->List(filter, *page);
  if (!rows.ok()) return rows.status();
  v1::ListProjectsResponse out;
  PageBudget budget;
  for (auto& p : rows->items) {
    if (!budget.Take(p)) {
      // Full by size: the next page starts after the last project sent.
      const v1::Project& last = out.projects(out.projects_size() - 1);
      const int64_t micros =
          last.create_time().seconds() * 1000000 + last.create_time().nanos() / 1000;
      out.set_next_page_token(MakePageToken(filters, {absl::StrCat(micros), last.id()}));
      return out;
    }
    *out.add_projects() = std::move(p);
  }
  if (!rows->last_keys.empty()) out.set_next_page_token(MakePageToken(filters, rows->last_keys));
  return out;
}

absl::StatusOr<v1::ListProjectsResponse> ProjectCatalog::ListReachable(const Principal& caller,
                                                                       const ProjectFilter& filter,
                                                                       const PageRequest& page) {
  v1::ListProjectsResponse out;
  // One project at most: it is on the first page.
  if (!page.after.empty()) return out;
  auto project = Visible(caller, "project_id", caller.project_id);
  if (absl::IsNotFound(project.status())) return out;
  if (!project.ok()) return project.status();
  const bool owner_matches = filter.owner_id.empty() || project->owner_id() == filter.owner_id;
  const bool status_matches =
      filter.status == v1::PROJECT_STATUS_UNSPECIFIED || project->status() == filter.status;
  if (owner_matches && status_matches) *out.add_projects() = *std::move(project);
  return out;
}

absl::StatusOr<v1::Project> ProjectCatalog::Update(const Principal& caller,
                                                   const v1::UpdateProjectRequest& req) {
  const v1::Project& in = req.project();
  if (auto s = CheckToken("request_id", req.request_id()); !s.ok()) return s;
  std::vector<std::string> fields;
  if (req.has_update_mask() && req.update_mask().paths_size() > 0) {
    for (const auto& path : req.update_mask().paths()) {
      if (path == "name" || path == "id" || path == "owner_id" || path == "create_time" ||
          path == "update_time") {
        return InvalidField("update_mask", absl::StrCat("'", path, "' cannot be changed"));
      }
      if (!MutableFields().contains(path)) {
        return InvalidField("update_mask", absl::StrCat("unknown field '", path, "'"));
      }
      if (std::find(fields.begin(), fields.end(), path) == fields.end()) fields.push_back(path);
    }
  } else {
    // No mask: every mutable field the request sets.
    if (!in.display_name().empty()) fields.push_back("display_name");
    if (!in.description().empty()) fields.push_back("description");
    if (in.status() != v1::PROJECT_STATUS_UNSPECIFIED) fields.push_back("status");
    if (!in.repository_url().empty()) fields.push_back("repository_url");
    if (!in.template_id().empty()) fields.push_back("template_id");
    if (!in.template_version().empty()) fields.push_back("template_version");
    if (!in.template_answers().empty()) fields.push_back("template_answers");
    if (in.has_run_contract()) fields.push_back("run_contract");
    if (in.change_delivery() != v1::CHANGE_DELIVERY_UNSPECIFIED) {
      fields.push_back("change_delivery");
    }
    if (in.deploy_fix() != v1::DEPLOY_FIX_UNSPECIFIED) fields.push_back("deploy_fix");
    if (fields.empty()) {
      return InvalidField("update_mask", "names no field and the project sets none to change");
    }
  }
  // The mesh records repositories on its own git host (e.g. the local one
  // on loopback, over plain http): its URLs are trusted as they are.
  RepositoryUrlPolicy urls = options_.repository_urls;
  if (caller.kind == PrincipalKind::kMesh) urls.allow_local_hosts = true;
  for (const auto& path : fields) {
    if (auto s = ValidateMutableField(in, path, urls); !s.ok()) return s;
  }
  auto current = Visible(caller, "project.id", in.id());
  if (!current.ok()) return current.status();
  const auto updates = [&fields](absl::string_view path) {
    return std::find(fields.begin(), fields.end(), path) != fields.end();
  };
  if (updates("change_delivery") || updates("repository_url")) {
    // Checked on the project as it would be: a repository moved off GitHub
    // cannot keep taking changes by pull request either.
    v1::Project after = *std::move(current);
    if (updates("change_delivery")) after.set_change_delivery(in.change_delivery());
    if (updates("repository_url")) after.set_repository_url(in.repository_url());
    if (auto s = CheckChangeDelivery(after); !s.ok()) return s;
  }
  return store_->Update(in, fields);
}

absl::Status ProjectCatalog::Delete(const Principal& caller, const v1::DeleteProjectRequest& req) {
  if (auto s = CheckToken("request_id", req.request_id()); !s.ok()) return s;
  auto current = Visible(caller, "project_id", req.project_id());
  if (!current.ok()) return current.status();
  return store_->Delete(req.project_id());
}

absl::StatusOr<v1::Secret> ProjectCatalog::SetSecret(const Principal& caller,
                                                     const v1::SetSecretRequest& req) {
  if (auto s = ValidateSecretName("name", req.name()); !s.ok()) return s;
  if (req.value().empty()) return InvalidField("value", "is required");
  // Secrets reach agents as environment variables, which cannot hold a NUL.
  if (req.value().find('\0') != std::string::npos) {
    return InvalidField("value",
                        "must not contain a NUL byte (it becomes an environment variable)");
  }
  if (req.value().size() > kMaxSecretValue) {
    return InvalidField("value", absl::StrCat("is ", req.value().size(), " bytes; at most ",
                                              kMaxSecretValue, " are allowed"));
  }
  if (auto s = CheckToken("request_id", req.request_id()); !s.ok()) return s;
  auto project = Visible(caller, "project_id", req.project_id());
  if (!project.ok()) return project.status();
  std::string sealed = absl::Base64Escape(
      secrets_.Seal(req.value(), SecretAssociatedData(req.project_id(), req.name())));
  return store_->PutSecret(req.project_id(), req.name(), sealed);
}

absl::StatusOr<v1::ListSecretsResponse> ProjectCatalog::ListSecrets(
    const Principal& caller, const v1::ListSecretsRequest& req) {
  auto project = Visible(caller, "project_id", req.project_id());
  if (!project.ok()) return project.status();
  const std::string filters = absl::StrCat("secrets=", req.project_id());
  auto page = ParsePageRequest(req.page_size(), req.page_token(), filters, 100, kMaxPageSize);
  if (!page.ok()) return page.status();
  auto rows = store_->ListSecrets(req.project_id(), *page);
  if (!rows.ok()) return rows.status();
  v1::ListSecretsResponse out;
  for (auto& s : rows->items) *out.add_secrets() = std::move(s);
  if (!rows->last_keys.empty()) out.set_next_page_token(MakePageToken(filters, rows->last_keys));
  return out;
}

absl::Status ProjectCatalog::DeleteSecret(const Principal& caller,
                                          const v1::DeleteSecretRequest& req) {
  if (auto s = ValidateSecretName("name", req.name()); !s.ok()) return s;
  auto project = Visible(caller, "project_id", req.project_id());
  if (!project.ok()) return project.status();
  absl::Status deleted = store_->DeleteSecret(req.project_id(), req.name());
  if (absl::IsNotFound(deleted)) {
    return absl::NotFoundError(absl::StrCat("secret '", req.name(), "' not found"));
  }
  return deleted;
}

absl::StatusOr<std::string> ProjectCatalog::RevealSecret(const Principal& caller,
                                                         absl::string_view project_id,
                                                         absl::string_view name) {
  auto project = Visible(caller, "project_id", project_id);
  if (!project.ok()) return project.status();
  auto stored = store_->GetSealedSecret(project_id, name);
  if (!stored.ok()) return stored.status();
  std::string sealed;
  if (!absl::Base64Unescape(*stored, &sealed)) {
    return absl::DataLossError("stored secret is not valid base64");
  }
  return secrets_.Open(sealed, SecretAssociatedData(project_id, name));
}

absl::StatusOr<v1::RevealSecretsResponse> ProjectCatalog::RevealSecrets(
    const Principal& caller, const v1::RevealSecretsRequest& req) {
  if (!IsMesh(caller)) return absl::PermissionDeniedError("only the mesh reveals secrets");
  if (auto s = RequireNonEmpty("project_id", req.project_id()); !s.ok()) return s;
  v1::RevealSecretsResponse out;
  for (int i = 0; i < req.names_size(); ++i) {
    auto value = RevealSecret(caller, req.project_id(), req.names(i));
    if (!value.ok()) {
      return absl::Status(value.status().code(),
                          absl::StrCat("names[", i, "]: ", value.status().message()));
    }
    (*out.mutable_values())[req.names(i)] = *std::move(value);
  }
  return out;
}

}  // namespace orchestrator::projects
