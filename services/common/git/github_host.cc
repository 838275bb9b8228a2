#include "services/common/git/github_host.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/common/git/git_cli.h"
#include "services/common/git/mesh_git_credentials.h"

namespace orchestrator::git {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

constexpr size_t kMaxRepositoryName = 100;
constexpr size_t kMaxLogin = 39;

// GitHub's rule for repository names (anything else it silently rewrites).
absl::Status ValidateRepositoryName(const std::string& name) {
  const bool allowed_chars = std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-';
  });
  if (name.empty() || name.size() > kMaxRepositoryName || !allowed_chars || name == "." ||
      name == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("repository_name: \"", absl::CHexEscape(name.substr(0, kMaxRepositoryName)),
                     "\" is not a GitHub repository name (1 to 100 letters, digits, '.', '_' "
                     "or '-'; not \".\" or \"..\")"));
  }
  return absl::OkStatus();
}

// GitHub's rule for user and organisation names.
bool IsLogin(absl::string_view login) {
  return !login.empty() && login.size() <= kMaxLogin && login.front() != '-' &&
         std::all_of(login.begin(), login.end(),
                     [](char c) { return absl::ascii_isalnum(c) || c == '-'; });
}

std::optional<Struct> ParseObject(const std::string& json) {
  Struct object;
  if (!google::protobuf::util::JsonStringToMessage(json, &object).ok()) return std::nullopt;
  return object;
}

std::string StringField(const Struct& object, const std::string& name) {
  auto it = object.fields().find(name);
  return it == object.fields().end() ? "" : it->second.string_value();
}

// What GitHub says an error answer means: its `message`, then the
// `errors`' messages (or codes), e.g. "Repository creation failed. (name
// already exists on this account)".
std::string GitHubMessage(const http::Response& response) {
  auto object = ParseObject(response.body);
  if (!object.has_value()) return absl::StrCat("HTTP ", response.status);
  std::string message = StringField(*object, "message");
  if (message.empty()) message = absl::StrCat("HTTP ", response.status);
  std::vector<std::string> details;
  auto errors = object->fields().find("errors");
  if (errors != object->fields().end()) {
    for (const Value& error : errors->second.list_value().values()) {
      if (error.has_string_value()) {
        details.push_back(error.string_value());
        continue;
      }
      std::string detail = StringField(error.struct_value(), "message");
      if (detail.empty()) {
        detail = absl::StrCat(StringField(error.struct_value(), "field"), " ",
                              StringField(error.struct_value(), "code"));
      }
      details.push_back(detail);
    }
  }
  if (!details.empty()) absl::StrAppend(&message, " (", absl::StrJoin(details, "; "), ")");
  return message;
}

// A 422 from a create that says the name is taken.
bool NameTaken(const http::Response& response) {
  auto object = ParseObject(response.body);
  if (!object.has_value()) return false;
  auto errors = object->fields().find("errors");
  if (errors == object->fields().end()) return false;
  for (const Value& error : errors->second.list_value().values()) {
    const Struct& e = error.struct_value();
    if (StringField(e, "field") == "name" &&
        (StringField(e, "code") == "already_exists" ||
         absl::StrContains(StringField(e, "message"), "already exists"))) {
      return true;
    }
  }
  return false;
}

// GitHub's primary and secondary rate limits answer 403 or 429 with these
// headers: waiting is the cure.
bool RateLimited(const http::Response& response) {
  return (response.status == 403 || response.status == 429) &&
         (response.Header("x-ratelimit-remaining") == "0" ||
          !response.Header("retry-after").empty());
}

// The status for an answer the caller has no better word for.
absl::Status ErrorStatus(const http::Response& response, absl::string_view what) {
  const std::string message = absl::StrCat(what, ": ", GitHubMessage(response));
  if (RateLimited(response)) {
    std::string retry = response.Header("retry-after");
    return absl::UnavailableError(absl::StrCat(
        message, " (rate limited", retry.empty() ? "" : "; retry after " + retry + "s", ")"));
  }
  if (response.status == 401) return absl::UnauthenticatedError(message);
  if (response.status == 403) return absl::PermissionDeniedError(message);
  if (response.status == 404) return absl::NotFoundError(message);
  if (response.status >= 500) return absl::UnavailableError(message);
  if (response.status >= 300 && response.status < 400) {
    return absl::FailedPreconditionError(absl::StrCat(message, " (renamed or transferred?)"));
  }
  return absl::FailedPreconditionError(message);
}

absl::StatusOr<Repository> RepositoryOf(const http::Response& response, absl::string_view what) {
  auto object = ParseObject(response.body);
  Repository repository;
  if (object.has_value()) {
    repository.clone_url = StringField(*object, "clone_url");
    repository.web_url = StringField(*object, "html_url");
    repository.full_name = StringField(*object, "full_name");
  }
  if (repository.clone_url.empty() || repository.full_name.empty()) {
    return absl::UnavailableError(
        absl::StrCat(what, ": HTTP ", response.status, " without a repository"));
  }
  return repository;
}

// A branch name as GitHub takes one in `head` and `base`: git's rules for
// a ref's last part, roughly, and no "owner:" prefix (same repository only).
bool IsBranchName(absl::string_view name) {
  if (name.empty() || name.size() > 255 || name.front() == '-' || name.front() == '/' ||
      name.back() == '/' || name.back() == '.' || absl::StrContains(name, "..") ||
      absl::StrContains(name, "//") || absl::StrContains(name, "@{") ||
      absl::EndsWith(name, ".lock")) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > ' ' && u != 0x7f && c != ':' && c != '~' && c != '^' && c != '?' && c != '*' &&
           c != '[' && c != '\\';
  });
}

// `value` for a query string: all but the unreserved characters %-escaped.
std::string QueryValue(absl::string_view value) {
  std::string out;
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (absl::ascii_isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      absl::StrAppend(&out, "%", absl::Hex(u, absl::kZeroPad2));
    }
  }
  return out;
}

// A 422 from opening a pull request that says one is open already.
bool PullRequestExists(const http::Response& response) {
  return response.status == 422 && absl::StrContains(GitHubMessage(response), "already exists");
}

// GitHub refuses control characters in a description.
std::string PrintableLine(absl::string_view text) {
  std::string line(text);
  for (char& c : line) {
    if (absl::ascii_iscntrl(c)) c = ' ';
  }
  return line;
}

}  // namespace

absl::StatusOr<std::unique_ptr<GitHubHost>> GitHubHost::FromConfig(GitHubConfig config) {
  auto api = http::BaseUrl::Parse(config.api_url);
  if (!api.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("api_url: ", api.status().message()));
  }
  if (!config.owner.empty() && !IsLogin(config.owner)) {
    return absl::InvalidArgumentError(
        absl::StrCat("owner: \"", absl::CHexEscape(config.owner),
                     "\" is not a GitHub organisation name (letters, digits and '-')"));
  }
  if (config.token.empty()) return absl::InvalidArgumentError("token: required");
  return std::unique_ptr<GitHubHost>(new GitHubHost(std::move(config), *std::move(api)));
}

GitHubHost::GitHubHost(GitHubConfig config, http::BaseUrl api)
    : config_(std::move(config)),
      client_(std::move(api), http::ClientOptions{.user_agent = "codegen-orchestrator"}) {}

absl::StatusOr<http::Response> GitHubHost::Call(const std::string& method, const std::string& path,
                                                const std::string& json_body) {
  http::Request request;
  request.method = method;
  request.target = path;
  request.headers = {{"Accept", "application/vnd.github+json"},
                     {"Authorization", "Bearer " + config_.token},
                     {"X-GitHub-Api-Version", "2022-11-28"}};
  if (!json_body.empty()) request.headers.emplace_back("Content-Type", "application/json");
  request.body = json_body;
  request.timeout = config_.timeout;
  auto response = client_.Send(request);
  if (!response.ok()) {
    return absl::Status(response.status().code(),
                        absl::StrCat("GitHub ", response.status().message()));
  }
  return response;
}

absl::StatusOr<std::string> GitHubHost::Owner() {
  if (!config_.owner.empty()) return config_.owner;
  {
    absl::MutexLock lock(&mu_);
    if (!login_.empty()) return login_;
  }
  auto response = Call("GET", "/user", "");
  if (!response.ok()) return response.status();
  if (response->status != 200) return ErrorStatus(*response, "GitHub GET /user");
  auto object = ParseObject(response->body);
  const std::string login = object.has_value() ? StringField(*object, "login") : "";
  if (!IsLogin(login)) {
    return absl::UnavailableError("GitHub GET /user: the answer has no login");
  }
  absl::MutexLock lock(&mu_);
  login_ = login;
  return login_;
}

absl::StatusOr<std::optional<Repository>> GitHubHost::Find(const std::string& name) {
  if (auto s = ValidateRepositoryName(name); !s.ok()) return s;
  auto owner = Owner();
  if (!owner.ok()) return owner.status();
  const std::string path = absl::StrCat("/repos/", *owner, "/", name);
  auto response = Call("GET", path, "");
  if (!response.ok()) return response.status();
  const std::string what = absl::StrCat("GitHub GET ", path);
  // Also what a private repository the token may not see answers.
  if (response->status == 404) return std::nullopt;
  if (response->status != 200) return ErrorStatus(*response, what);
  auto repository = RepositoryOf(*response, what);
  if (!repository.ok()) return repository.status();
  return *std::move(repository);
}

absl::StatusOr<Repository> GitHubHost::Create(const NewRepository& repository) {
  if (auto s = ValidateRepositoryName(repository.name); !s.ok()) return s;
  Struct body;
  auto& fields = *body.mutable_fields();
  fields["name"].set_string_value(repository.name);
  fields["description"].set_string_value(PrintableLine(repository.description));
  fields["private"].set_bool_value(true);
  fields["auto_init"].set_bool_value(false);
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(body, &json).ok()) {
    return absl::InvalidArgumentError("description: not valid UTF-8");
  }
  const std::string path =
      config_.owner.empty() ? "/user/repos" : absl::StrCat("/orgs/", config_.owner, "/repos");
  auto response = Call("POST", path, json);
  if (!response.ok()) return response.status();
  const std::string what = absl::StrCat("GitHub POST ", path);
  if (response->status == 201) return RepositoryOf(*response, what);
  if (response->status == 422 && NameTaken(*response)) {
    auto owner = Owner();
    return absl::AlreadyExistsError(absl::StrCat("repository ", owner.ok() ? *owner + "/" : "",
                                                 repository.name, " already exists on GitHub"));
  }
  if (!RateLimited(*response) && (response->status == 403 || response->status == 404)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "GitHub refused to create a repository in ",
        config_.owner.empty() ? "the token's account" : "organisation " + config_.owner, ": ",
        GitHubMessage(*response)));
  }
  return ErrorStatus(*response, what);
}

absl::StatusOr<GitCredentials> GitHubHost::PushCredentials(const Repository& repository) {
  // The token goes only to this GitHub.
  if (!IsGitHubRepositoryUrl(client_.base(), repository.clone_url)) {
    return absl::InvalidArgumentError(
        absl::StrCat("clone_url: not a repository of the GitHub at ", client_.base().Authority()));
  }
  return GitHubTokenCredentials(config_.token);
}

absl::Status GitHubHost::Push(const Repository& repository, const std::string& dir,
                              const std::string& branch) {
  auto credentials = PushCredentials(repository);
  if (!credentials.ok()) return credentials.status();
  return GitCli(config_.git_timeout).Push(dir, repository.clone_url, branch, *credentials);
}

absl::StatusOr<std::string> GitHubHost::Head(const Repository& repository,
                                             const std::string& branch) {
  auto credentials = PushCredentials(repository);
  if (!credentials.ok()) return credentials.status();
  return GitCli(config_.git_timeout)
      .RemoteHead(repository.clone_url, "refs/heads/" + branch, *credentials);
}

absl::StatusOr<std::string> GitHubHost::OpenPullRequest(const std::string& full_name,
                                                        const std::string& head,
                                                        const std::string& base,
                                                        const std::string& title,
                                                        const std::string& body) {
  const size_t slash = full_name.find('/');
  if (slash == std::string::npos || !IsLogin(full_name.substr(0, slash)) ||
      !ValidateRepositoryName(full_name.substr(slash + 1)).ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "full_name: \"", absl::CHexEscape(full_name.substr(0, 200)), "\" is not owner/repository"));
  }
  for (const auto& [field, branch] : {std::pair{"head", &head}, std::pair{"base", &base}}) {
    if (!IsBranchName(*branch)) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": \"", absl::CHexEscape(branch->substr(0, 255)), "\" is not a branch name"));
    }
  }
  if (title.empty()) return absl::InvalidArgumentError("title: must be set");
  Struct request;
  auto& fields = *request.mutable_fields();
  fields["title"].set_string_value(PrintableLine(title));
  fields["head"].set_string_value(head);
  fields["base"].set_string_value(base);
  fields["body"].set_string_value(body);
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(request, &json).ok()) {
    return absl::InvalidArgumentError("title, body: not valid UTF-8");
  }
  const std::string path = absl::StrCat("/repos/", full_name, "/pulls");
  const std::string what = absl::StrCat("GitHub POST ", path);
  auto response = Call("POST", path, json);
  if (!response.ok()) return response.status();
  if (response->status == 201) {
    auto object = ParseObject(response->body);
    const std::string url = object.has_value() ? StringField(*object, "html_url") : "";
    if (url.empty())
      return absl::UnavailableError(absl::StrCat(what, ": HTTP 201 without html_url"));
    return url;
  }
  if (response->status == 404) {
    return absl::NotFoundError(
        absl::StrCat(what, ": repository ", full_name, " not found (or the token may not see it)"));
  }
  if (!PullRequestExists(*response)) return ErrorStatus(*response, what);
  // Opened before (a retry): the open one from `head` into `base`.
  const std::string list =
      absl::StrCat(path, "?state=open&head=", QueryValue(full_name.substr(0, slash)), "%3A",
                   QueryValue(head), "&base=", QueryValue(base));
  auto open = Call("GET", list, "");
  if (!open.ok()) return open.status();
  if (open->status != 200) return ErrorStatus(*open, absl::StrCat("GitHub GET ", path));
  Value pulls;
  if (google::protobuf::util::JsonStringToMessage(open->body, &pulls).ok()) {
    for (const Value& pull : pulls.list_value().values()) {
      const std::string url = StringField(pull.struct_value(), "html_url");
      if (!url.empty()) return url;
    }
  }
  return absl::FailedPreconditionError(absl::StrCat(what, ": ", GitHubMessage(*response)));
}

}  // namespace orchestrator::git
