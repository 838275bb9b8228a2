#include "services/common/kubernetes/kube_client.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "services/common/containers/engine_errors.h"
#include "services/common/containers/engine_inputs.h"
#include "services/common/containers/json_fields.h"

namespace orchestrator::kubernetes {
namespace {

using containers::Field;
using containers::ParseJson;
using containers::StringField;

constexpr size_t kMaxFileBytes = 1 << 20;
constexpr size_t kMaxWatchLineBytes = 4 << 20;
constexpr absl::Duration kTokenRereadAfter = absl::Minutes(1);
// A Pod's log, as Role rules name it.
constexpr Resource kPodLogs{"", "v1", "pods/log", "Pod"};

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::FailedPreconditionError(absl::StrCat(what, " ", path, " cannot be read"));
  std::string text(kMaxFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxFileBytes) {
    return absl::FailedPreconditionError(absl::StrCat(what, " ", path, " is over 1 MiB"));
  }
  return text;
}

// The complete lines of a stream that arrives in pieces, each to `on_line`
// (false stops the stream); a line still unfinished past
// kMaxWatchLineBytes stops it too (too_long()).
class LineFeeder {
 public:
  explicit LineFeeder(std::function<bool(absl::string_view line)> on_line)
      : on_line_(std::move(on_line)) {}

  bool Feed(absl::string_view piece) {
    pending_.append(piece.data(), piece.size());
    size_t start = 0;
    for (size_t end; (end = pending_.find('\n', start)) != std::string::npos; start = end + 1) {
      if (!on_line_(absl::string_view(pending_).substr(start, end - start))) return false;
    }
    pending_.erase(0, start);
    too_long_ = pending_.size() > kMaxWatchLineBytes;
    return !too_long_;
  }
  bool too_long() const { return too_long_; }
  // What came after the last line break.
  const std::string& rest() const { return pending_; }

 private:
  const std::function<bool(absl::string_view line)> on_line_;
  std::string pending_;
  bool too_long_ = false;
};

// The resource as errors and Role rules name it: "pods", "deployments.apps".
std::string Qualified(const Resource& resource) {
  return *resource.group == '\0' ? resource.plural
                                 : absl::StrCat(resource.plural, ".", resource.group);
}

std::string What(absl::string_view verb, const Resource& resource, absl::string_view name) {
  return name.empty()
             ? absl::StrCat("kubernetes: ", verb, " ", Qualified(resource))
             : absl::StrCat("kubernetes: ", verb, " ", Qualified(resource), " \"", name, "\"");
}

// A kubeconfig's named entry ("clusters", "contexts", "users"): its inner
// object ("cluster", "context", "user").
const nlohmann::json* Named(const nlohmann::json& config, const char* list, const char* inner,
                            const std::string& name) {
  const nlohmann::json* entries = Field(config, list);
  if (entries == nullptr || !entries->is_array()) return nullptr;
  for (const auto& entry : *entries) {
    if (StringField(entry, "name") == name) return Field(entry, inner);
  }
  return nullptr;
}

// A kubeconfig's "<key>-data" (base64) or "<key>" (a file, relative to the
// kubeconfig's directory); "" when neither.
absl::StatusOr<std::string> DataOrFile(const nlohmann::json& entry, const std::string& key,
                                       const std::filesystem::path& dir,
                                       const std::string& source) {
  const std::string data = StringField(entry, (key + "-data").c_str());
  if (!data.empty()) {
    std::string decoded;
    if (!absl::Base64Unescape(data, &decoded)) {
      return absl::FailedPreconditionError(absl::StrCat(source, ": ", key, "-data is not base64"));
    }
    return decoded;
  }
  const std::string file = StringField(entry, key.c_str());
  if (file.empty()) return std::string();
  return ReadSmallFile((dir / file).string(), absl::StrCat(source, ": ", key));
}

}  // namespace

absl::StatusOr<ClusterConfig> InClusterConfig(const std::string& dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0') {
    return absl::FailedPreconditionError(
        "not in a Kubernetes Pod: $KUBERNETES_SERVICE_HOST and $KUBERNETES_SERVICE_PORT are not "
        "set (from outside a cluster, name a kubeconfig file)");
  }
  ClusterConfig config;
  config.source = absl::StrCat("the service account in ", dir);
  const std::string h = host;
  config.server = absl::StrCat(
      "https://", absl::StrContains(h, ':') ? absl::StrCat("[", h, "]") : h, ":", port);
  config.token_file = dir + "/token";
  auto ca = ReadSmallFile(dir + "/ca.crt", "the cluster's CA");
  if (!ca.ok()) return ca.status();
  config.ca_pem = *std::move(ca);
  auto ns = ReadSmallFile(dir + "/namespace", "the Pod's namespace");
  if (!ns.ok()) return ns.status();
  config.namespace_name = std::string(absl::StripAsciiWhitespace(*ns));
  return config;
}

absl::StatusOr<ClusterConfig> KubeconfigConfig(const std::string& path,
                                               const std::string& context) {
  auto text = ReadSmallFile(path, "kubeconfig");
  if (!text.ok()) return text.status();
  const nlohmann::json config = ParseJson(*text);
  if (config.is_discarded() || !config.is_object()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "kubeconfig ", path, " is not JSON: write it as JSON with `kubectl config view --raw ",
        "--flatten -o json > FILE`"));
  }
  const std::string name = context.empty() ? StringField(config, "current-context") : context;
  if (name.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("kubeconfig ", path, " has no current-context: name a context"));
  }
  ClusterConfig out;
  out.source = absl::StrCat("kubeconfig ", path, ", context ", name);
  const nlohmann::json* ctx = Named(config, "contexts", "context", name);
  if (ctx == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("kubeconfig ", path, " has no context ", name));
  }
  const nlohmann::json* cluster =
      Named(config, "clusters", "cluster", StringField(*ctx, "cluster"));
  if (cluster == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        out.source, ": its cluster \"", StringField(*ctx, "cluster"), "\" is missing"));
  }
  const nlohmann::json* user = Named(config, "users", "user", StringField(*ctx, "user"));
  static const nlohmann::json kNoUser = nlohmann::json::object();
  if (user == nullptr) user = &kNoUser;
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();

  out.server = StringField(*cluster, "server");
  if (out.server.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(out.source, ": the cluster has no server"));
  }
  if (containers::BoolField(*cluster, "insecure-skip-tls-verify")) {
    return absl::FailedPreconditionError(
        absl::StrCat(out.source, ": insecure-skip-tls-verify is refused: give the cluster's CA"));
  }
  auto ca = DataOrFile(*cluster, "certificate-authority", dir, out.source);
  if (!ca.ok()) return ca.status();
  out.ca_pem = *std::move(ca);
  for (const char* plugin : {"exec", "auth-provider", "username"}) {
    if (Field(*user, plugin) != nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          out.source, ": its user authenticates with \"", plugin,
          "\", which is not supported: give a token, a token file or a client certificate"));
    }
  }
  out.token = StringField(*user, "token");
  out.token_file = StringField(*user, "tokenFile");
  if (!out.token_file.empty()) out.token_file = (dir / out.token_file).string();
  auto cert = DataOrFile(*user, "client-certificate", dir, out.source);
  if (!cert.ok()) return cert.status();
  out.client_certificate_pem = *std::move(cert);
  auto key = DataOrFile(*user, "client-key", dir, out.source);
  if (!key.ok()) return key.status();
  out.client_key_pem = *std::move(key);
  out.namespace_name = StringField(*ctx, "namespace");
  if (out.namespace_name.empty()) out.namespace_name = "default";
  return out;
}

absl::Status AnswerStatus(const http::Response& response, absl::string_view verb,
                          const Resource& resource, absl::string_view name) {
  const nlohmann::json body = ParseJson(response.body);
  const std::string reason = body.is_object() ? StringField(body, "reason") : "";
  const std::string message =
      absl::StrCat(What(verb, resource, name), ": ", containers::EngineMessage(response));
  switch (response.status) {
    case 400:
    case 422:
      return absl::InvalidArgumentError(message);
    case 401:
      return absl::UnauthenticatedError(
          absl::StrCat(message, " (the API server does not accept the mesh's credentials)"));
    case 403:
      return absl::PermissionDeniedError(absl::StrCat(
          message, ": the orchestrator's Role needs the rule {apiGroups: [\"", resource.group,
          "\"], resources: [\"", resource.plural, "\"], verbs: [\"", verb, "\"]}"));
    case 404:
      return absl::NotFoundError(message);
    case 409:
      if (reason == "AlreadyExists") return absl::AlreadyExistsError(message);
      return absl::AbortedError(absl::StrCat(message, " (it changed meanwhile: read it again)"));
    case 410:
      return absl::AbortedError(absl::StrCat(message, " (too old: list again)"));
    case 429:
      return absl::ResourceExhaustedError(message);
    default:
      if (response.status >= 500) return absl::UnavailableError(message);
      return absl::FailedPreconditionError(message);
  }
}

absl::StatusOr<std::unique_ptr<KubeClient>> KubeClient::Connect(ClusterConfig config) {
  auto base = http::BaseUrl::Parse(config.server);
  if (!base.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(config.source, ": the API server's URL: ", base.status().message()));
  }
  if (base->unix_socket.empty() == false) {
    return absl::FailedPreconditionError(
        absl::StrCat(config.source, ": the API server is reached over http(s)"));
  }
  const bool certificate = !config.client_certificate_pem.empty();
  if (config.token.empty() && config.token_file.empty() && !certificate) {
    return absl::FailedPreconditionError(absl::StrCat(
        config.source, ": no credentials (a token, a token file or a client certificate)"));
  }
  if (config.namespace_name.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(config.source, ": no namespace"));
  }
  auto client = std::unique_ptr<KubeClient>(new KubeClient(std::move(config), *std::move(base)));
  if (!client->config_.token_file.empty()) {
    if (auto token = client->Token(); !token.ok()) return token.status();
  }
  return client;
}

KubeClient::KubeClient(ClusterConfig config, http::BaseUrl base) : config_(std::move(config)) {
  http::ClientOptions options;
  options.user_agent = "orchestrator-kubernetes";
  options.max_response_bytes = 16 << 20;
  options.ca_pem = config_.ca_pem;
  options.client_certificate_pem = config_.client_certificate_pem;
  options.client_key_pem = config_.client_key_pem;
  http_ = std::make_unique<http::HttpClient>(std::move(base), std::move(options));
}

absl::StatusOr<std::string> KubeClient::Token() {
  if (config_.token_file.empty()) return config_.token;
  absl::MutexLock lock(&token_mu_);
  if (absl::Now() - token_read_ < kTokenRereadAfter) return token_;
  auto text = ReadSmallFile(config_.token_file, "the token file");
  if (!text.ok()) {
    if (!token_.empty()) return token_;  // the last one read, while the file is being swapped
    return text.status();
  }
  token_ = std::string(absl::StripAsciiWhitespace(*text));
  token_read_ = absl::Now();
  return token_;
}

std::string KubeClient::PathOf(const Resource& resource, const std::string& name) const {
  std::string path = *resource.group == '\0'
                         ? absl::StrCat("/api/", resource.version)
                         : absl::StrCat("/apis/", resource.group, "/", resource.version);
  absl::StrAppend(&path, "/namespaces/", containers::QueryEscape(config_.namespace_name), "/",
                  resource.plural);
  if (!name.empty()) absl::StrAppend(&path, "/", containers::QueryEscape(name));
  return path;
}

absl::StatusOr<http::Headers> KubeClient::HeadersFor(absl::string_view content_type) {
  http::Headers headers = {{"Accept", "application/json"}};
  auto token = Token();
  if (!token.ok()) return token.status();
  if (!token->empty()) headers.emplace_back("Authorization", absl::StrCat("Bearer ", *token));
  if (!content_type.empty()) headers.emplace_back("Content-Type", std::string(content_type));
  return headers;
}

absl::Status KubeClient::Unanswered(const std::string& what, const absl::Status& status) const {
  return absl::Status(status.code(),
                      absl::StrCat(what, ": the API server at ", http_->base().Authority(), ": ",
                                   status.message()));
}

absl::StatusOr<nlohmann::json> KubeClient::Call(absl::string_view verb, const Resource& resource,
                                                const std::string& name, http::Request request,
                                                absl::string_view content_type) {
  auto headers = HeadersFor(request.body.empty() ? "" : content_type);
  if (!headers.ok()) return headers.status();
  request.headers = *std::move(headers);
  auto response = http_->Send(request);
  if (!response.ok()) {
    return Unanswered(What(verb, resource, name), response.status());
  }
  if (!response->ok()) return AnswerStatus(*response, verb, resource, name);
  nlohmann::json object = ParseJson(response->body);
  if (object.is_discarded() || !object.is_object()) {
    return absl::InternalError(
        absl::StrCat(What(verb, resource, name), ": the API server's answer is not a JSON object"));
  }
  return object;
}

absl::StatusOr<nlohmann::json> KubeClient::Create(const Resource& resource,
                                                  const nlohmann::json& object) {
  http::Request request;
  request.method = "POST";
  request.target = PathOf(resource);
  request.body = containers::DumpJson(object);
  const nlohmann::json* metadata = Field(object, "metadata");
  return Call("create", resource, metadata ? StringField(*metadata, "name") : "",
              std::move(request));
}

absl::StatusOr<nlohmann::json> KubeClient::Get(const Resource& resource, const std::string& name) {
  http::Request request;
  request.target = PathOf(resource, name);
  return Call("get", resource, name, std::move(request));
}

absl::StatusOr<nlohmann::json> KubeClient::Patch(const Resource& resource, const std::string& name,
                                                 const nlohmann::json& patch) {
  http::Request request;
  request.method = "PATCH";
  request.target = PathOf(resource, name);
  request.body = containers::DumpJson(patch);
  return Call("patch", resource, name, std::move(request), "application/merge-patch+json");
}

absl::StatusOr<nlohmann::json> KubeClient::Replace(const Resource& resource,
                                                   const std::string& name,
                                                   const nlohmann::json& object) {
  http::Request request;
  request.method = "PUT";
  request.target = PathOf(resource, name);
  request.body = containers::DumpJson(object);
  return Call("update", resource, name, std::move(request));
}

absl::Status KubeClient::Delete(const Resource& resource, const std::string& name,
                                std::optional<absl::Duration> grace) {
  http::Request request;
  request.method = "DELETE";
  request.target = PathOf(resource, name);
  nlohmann::json options = {
      {"kind", "DeleteOptions"}, {"apiVersion", "v1"}, {"propagationPolicy", "Background"}};
  if (grace.has_value()) {
    options["gracePeriodSeconds"] = absl::ToInt64Seconds(std::max(*grace, absl::ZeroDuration()));
  }
  request.body = containers::DumpJson(options);
  return Call("delete", resource, name, std::move(request)).status();
}

absl::StatusOr<nlohmann::json> KubeClient::List(const Resource& resource,
                                                const std::string& label_selector) {
  http::Request request;
  request.target = PathOf(resource);
  if (!label_selector.empty()) {
    absl::StrAppend(&request.target, "?labelSelector=", containers::QueryEscape(label_selector));
  }
  auto list = Call("list", resource, "", std::move(request));
  if (!list.ok()) return list;
  const nlohmann::json* items = Field(*list, "items");
  if (items == nullptr || items->is_null()) {
    (*list)["items"] = nlohmann::json::array();
  } else if (!items->is_array()) {
    return absl::InternalError(
        absl::StrCat(What("list", resource, ""), ": the answer's items are not a list"));
  }
  return list;
}

absl::Status KubeClient::Watch(const Resource& resource, const std::string& label_selector,
                               const std::string& resource_version,
                               const std::function<bool(const WatchEvent& event)>& on_event,
                               const std::atomic<bool>* cancel, absl::Duration timeout) {
  http::Request request;
  request.target = absl::StrCat(PathOf(resource), "?watch=1&allowWatchBookmarks=true");
  if (!label_selector.empty()) {
    absl::StrAppend(&request.target, "&labelSelector=", containers::QueryEscape(label_selector));
  }
  if (!resource_version.empty()) {
    absl::StrAppend(&request.target,
                    "&resourceVersion=", containers::QueryEscape(resource_version));
  }
  if (timeout != absl::InfiniteDuration()) {
    // The server ends the watch; the exchange's own deadline is a little later.
    absl::StrAppend(&request.target,
                    "&timeoutSeconds=", std::max<int64_t>(1, absl::ToInt64Seconds(timeout)));
    request.timeout = timeout + absl::Seconds(10);
  } else {
    request.timeout = absl::InfiniteDuration();
  }
  request.cancel = cancel;
  auto headers = HeadersFor("");
  if (!headers.ok()) return headers.status();
  request.headers = *std::move(headers);

  absl::Status ended = absl::OkStatus();
  bool stopped = false;
  LineFeeder lines([&](absl::string_view text) {
    absl::string_view line = absl::StripAsciiWhitespace(text);
    if (line.empty()) return true;
    const nlohmann::json event = ParseJson(line);
    if (event.is_discarded() || !event.is_object()) {
      ended = absl::InternalError(
          absl::StrCat(What("watch", resource, ""), ": an event is not a JSON object"));
      return false;
    }
    WatchEvent e{StringField(event, "type"), nlohmann::json::object()};
    if (const nlohmann::json* object = Field(event, "object"); object != nullptr) {
      e.object = *object;
    }
    if (e.type == "ERROR") {
      http::Response status;
      status.status = static_cast<int>(containers::IntField(e.object, "code"));
      status.body = containers::DumpJson(e.object);
      ended = AnswerStatus(status, "watch", resource, "");
      return false;
    }
    stopped = !on_event(e);
    return !stopped;
  });
  auto deliver = [&](absl::string_view piece) { return lines.Feed(piece); };
  auto response = http_->Stream(request, deliver);
  if (!response.ok()) {
    return Unanswered(What("watch", resource, ""), response.status());
  }
  if (!response->ok()) return AnswerStatus(*response, "watch", resource, "");
  if (lines.too_long()) {
    return absl::ResourceExhaustedError(
        absl::StrCat(What("watch", resource, ""), ": an event is over 4 MiB"));
  }
  if (stopped) return absl::OkStatus();
  return ended;
}

absl::Status KubeClient::PodLogs(const std::string& pod, const std::string& container,
                                 int tail_lines, bool follow,
                                 const std::function<bool(absl::string_view line)>& on_line,
                                 const std::atomic<bool>* cancel) {
  http::Request request;
  request.target =
      absl::StrCat(PathOf(kPods, pod), "/log?container=", containers::QueryEscape(container));
  if (tail_lines >= 0) absl::StrAppend(&request.target, "&tailLines=", tail_lines);
  if (follow) {
    absl::StrAppend(&request.target, "&follow=true");
    request.timeout = absl::InfiniteDuration();
  }
  request.cancel = cancel;
  auto headers = HeadersFor("");
  if (!headers.ok()) return headers.status();
  request.headers = *std::move(headers);
  LineFeeder lines(on_line);
  auto deliver = [&](absl::string_view piece) { return lines.Feed(piece); };
  auto response = http_->Stream(request, deliver);
  if (!response.ok()) {
    return Unanswered(What("get", kPodLogs, pod), response.status());
  }
  if (!response->ok()) return AnswerStatus(*response, "get", kPodLogs, pod);
  if (lines.too_long()) {
    return absl::ResourceExhaustedError(
        absl::StrCat(What("get", kPods, pod), " log: a line is over 4 MiB"));
  }
  if (!lines.rest().empty()) on_line(lines.rest());
  return absl::OkStatus();
}

}  // namespace orchestrator::kubernetes
