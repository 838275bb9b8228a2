#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/http/http_client.h"

namespace orchestrator::kubernetes {

// Where a Pod finds its service account: token, ca.crt, namespace.
inline constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

// Where the API server is, who the mesh is to it, and the namespace its
// objects live in.
struct ClusterConfig {
  std::string server;  // "https://10.96.0.1:443"; http:// only for tests
  // A bearer token, or the file holding it (re-read every minute: the
  // kubelet rotates a Pod's projected token). Neither with a client
  // certificate.
  std::string token;
  std::string token_file;
  std::string ca_pem;  // the cluster's CA; "" trusts the system's
  std::string client_certificate_pem;
  std::string client_key_pem;
  std::string namespace_name;
  // What the config came from, for errors ("the service account in /var/…",
  // "kubeconfig /root/.kube/config, context kind").
  std::string source;
};

// Inside a Pod: the API server from $KUBERNETES_SERVICE_HOST and
// $KUBERNETES_SERVICE_PORT, the token, CA and namespace from `dir`.
// FAILED_PRECONDITION naming what is missing (e.g. not in a Pod).
absl::StatusOr<ClusterConfig> InClusterConfig(const std::string& dir = kServiceAccountDir);

// From a kubeconfig file: its current context, or `context`. The file must
// be JSON (every JSON kubeconfig is a valid kubeconfig; `kubectl config view
// --raw --flatten -o json` writes one from a YAML one): an error says so.
// Supported: server, certificate-authority(-data), token, tokenFile,
// client-certificate(-data), client-key(-data), the context's namespace
// ("default" when none); exec and auth-provider plugins are refused.
absl::StatusOr<ClusterConfig> KubeconfigConfig(const std::string& path,
                                               const std::string& context = "");

// A kind of namespaced object, as its URL names it.
struct Resource {
  const char* group;  // "" for the core group
  const char* version;
  const char* plural;
  const char* kind;
};
inline constexpr Resource kPods{"", "v1", "pods", "Pod"};
inline constexpr Resource kSecrets{"", "v1", "secrets", "Secret"};
inline constexpr Resource kServices{"", "v1", "services", "Service"};
inline constexpr Resource kPersistentVolumeClaims{"", "v1", "persistentvolumeclaims",
                                                  "PersistentVolumeClaim"};
inline constexpr Resource kDeployments{"apps", "v1", "deployments", "Deployment"};
inline constexpr Resource kIngresses{"networking.k8s.io", "v1", "ingresses", "Ingress"};
inline constexpr Resource kNetworkPolicies{"networking.k8s.io", "v1", "networkpolicies",
                                           "NetworkPolicy"};

// One change a watch saw: "ADDED", "MODIFIED", "DELETED" or "BOOKMARK",
// and the object as it is after it.
struct WatchEvent {
  std::string type;
  nlohmann::json object;
};

// The status of an answer that is not 2xx to `verb` on `resource` (`name`
// may be ""), from the API server's Status object: 400 and 422
// INVALID_ARGUMENT, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED naming the
// Role rule that would allow it, 404 NOT_FOUND, 409 ALREADY_EXISTS
// (reason AlreadyExists) or ABORTED (a conflicting change: read and try
// again), 410 ABORTED (a watch's resource version is gone: list again),
// 429 RESOURCE_EXHAUSTED, 5xx UNAVAILABLE; each with the server's message.
absl::Status AnswerStatus(const http::Response& response, absl::string_view verb,
                          const Resource& resource, absl::string_view name);

// Kubernetes' API over HTTPS with JSON, in the configured namespace. Every
// error names the verb, the resource and the object; an exchange that
// failed before an answer is UNAVAILABLE naming the API server. Safe to
// use from many threads.
class KubeClient {
 public:
  // FAILED_PRECONDITION for a config that cannot be used (a bad server
  // URL, PEM, or neither a token nor a client certificate).
  static absl::StatusOr<std::unique_ptr<KubeClient>> Connect(ClusterConfig config);

  const std::string& namespace_name() const { return config_.namespace_name; }
  const ClusterConfig& config() const { return config_; }

  // The object as the server stored it.
  absl::StatusOr<nlohmann::json> Create(const Resource& resource, const nlohmann::json& object);
  absl::StatusOr<nlohmann::json> Get(const Resource& resource, const std::string& name);
  // A JSON merge patch (RFC 7386).
  absl::StatusOr<nlohmann::json> Patch(const Resource& resource, const std::string& name,
                                       const nlohmann::json& patch);
  // The whole object; ABORTED when it changed since its resourceVersion.
  absl::StatusOr<nlohmann::json> Replace(const Resource& resource, const std::string& name,
                                         const nlohmann::json& object);
  // NOT_FOUND when it is gone already. `grace` for Pods: the time between
  // SIGTERM and SIGKILL (none: the Pod's own).
  absl::Status Delete(const Resource& resource, const std::string& name,
                      std::optional<absl::Duration> grace = std::nullopt);
  // The list object: "items", and "metadata.resourceVersion" to watch from.
  // `label_selector` as Kubernetes writes it ("a=b,c in (d)"), "" for all.
  absl::StatusOr<nlohmann::json> List(const Resource& resource,
                                      const std::string& label_selector = "");

  // The changes after `resource_version` ("" : every object as ADDED
  // first) of the objects `label_selector` picks, each to `on_event` as it
  // happens, until it returns false (OK), `cancel` turns true (CANCELLED),
  // `timeout` passes or the server ends the watch (OK: watch again from
  // the last event's resourceVersion). ABORTED when the version is too old
  // (list again); an event line over 4 MiB is RESOURCE_EXHAUSTED.
  absl::Status Watch(const Resource& resource, const std::string& label_selector,
                     const std::string& resource_version,
                     const std::function<bool(const WatchEvent& event)>& on_event,
                     const std::atomic<bool>* cancel, absl::Duration timeout);

  // What `container` of Pod `pod` wrote (stdout and stderr), line by line
  // (the last `tail_lines`; -1 for all), and with `follow` the lines it
  // writes until it ends, `on_line` returns false, or `cancel` turns true.
  absl::Status PodLogs(const std::string& pod, const std::string& container, int tail_lines,
                       bool follow, const std::function<bool(absl::string_view line)>& on_line,
                       const std::atomic<bool>* cancel);

 private:
  KubeClient(ClusterConfig config, http::BaseUrl base);

  // The collection's path (in the namespace), and an object's.
  std::string PathOf(const Resource& resource, const std::string& name = "") const;
  // Authorization, Accept and the content type.
  absl::StatusOr<http::Headers> HeadersFor(absl::string_view content_type);
  // One exchange whose answer is an object.
  absl::StatusOr<nlohmann::json> Call(absl::string_view verb, const Resource& resource,
                                      const std::string& name, http::Request request,
                                      absl::string_view content_type = "application/json");
  // An exchange about `what` that failed before an answer: its code,
  // naming the API server.
  absl::Status Unanswered(const std::string& what, const absl::Status& status) const;
  // What the configured token is now (token_file re-read once a minute).
  absl::StatusOr<std::string> Token();

  ClusterConfig config_;
  std::unique_ptr<http::HttpClient> http_;
  absl::Mutex token_mu_;
  std::string token_ ABSL_GUARDED_BY(token_mu_);
  absl::Time token_read_ ABSL_GUARDED_BY(token_mu_) = absl::InfinitePast();
};

}  // namespace orchestrator::kubernetes
