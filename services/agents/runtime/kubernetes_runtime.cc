#include "services/agents/runtime/kubernetes_runtime.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "services/common/containers/json_fields.h"
#include "spdlog/spdlog.h"

namespace orchestrator::agents {
namespace {

using containers::Field;
using containers::IntField;
using containers::StringField;
using nlohmann::json;

constexpr char kManagedBy[] = "app.kubernetes.io/managed-by";
constexpr char kWorkerLabel[] = "orchestrator.worker";
constexpr char kOwnerLabel[] = "orchestrator.owner";
constexpr char kWorkspaceLabel[] = "orchestrator.workspace";
constexpr char kNetworkPolicyName[] = "orchestrator-workers";
constexpr int kAgentUid = 1000;
// Waiting reasons after which a Pod's container will not start by itself.
constexpr const char* kCannotStart[] = {"ErrImagePull",         "ImagePullBackOff",
                                        "InvalidImageName",     "CreateContainerConfigError",
                                        "CreateContainerError", "CrashLoopBackOff"};

// An id as a DNS-1123 name part: "wrk_ab12" → "wrk-ab12".
std::string NamePart(const std::string& id) {
  return absl::AsciiStrToLower(absl::StrReplaceAll(id, {{"_", "-"}}));
}

const json& Sub(const json& object, const char* key) {
  static const json kNone = json::object();
  const json* f = Field(object, key);
  return f == nullptr ? kNone : *f;
}

// Why `pod` is over for its worker, "" while it is not.
std::string WhyEnded(const json& pod) {
  const json& metadata = Sub(pod, "metadata");
  const json& status = Sub(pod, "status");
  const std::string name = StringField(metadata, "name");
  const std::string phase = StringField(status, "phase");
  if (StringField(status, "reason") == "Evicted") {
    return absl::StrCat("its Pod ", name, " was evicted: ", StringField(status, "message"));
  }
  const json* containers = Field(status, "containerStatuses");
  const json& first = containers != nullptr && containers->is_array() && !containers->empty()
                          ? (*containers)[0]
                          : json::object();
  const json& state = Sub(first, "state");
  if (phase == "Failed" || phase == "Succeeded") {
    const json& terminated = Sub(state, "terminated");
    std::string why = absl::StrCat("its Pod ", name, " ended (", phase);
    if (!StringField(terminated, "reason").empty()) {
      absl::StrAppend(&why, ": ", StringField(terminated, "reason"));
    }
    if (Field(terminated, "exitCode") != nullptr) {
      absl::StrAppend(&why, ", exit code ", IntField(terminated, "exitCode"));
    }
    absl::StrAppend(&why, ")");
    if (!StringField(status, "message").empty()) {
      absl::StrAppend(&why, ": ", StringField(status, "message"));
    }
    return why;
  }
  const json& waiting = Sub(state, "waiting");
  const std::string reason = StringField(waiting, "reason");
  for (const char* cannot : kCannotStart) {
    if (reason == cannot) {
      return absl::StrCat("its Pod ", name, " cannot start: ", reason, ": ",
                          StringField(waiting, "message"));
    }
  }
  if (!StringField(metadata, "deletionTimestamp").empty()) {
    return absl::StrCat("its Pod ", name, " was deleted");
  }
  return "";
}

}  // namespace

class KubernetesRuntime::PodWorker final : public RunningWorker {
 public:
  PodWorker(KubernetesRuntime* runtime, std::string worker_id)
      : runtime_(runtime), worker_id_(std::move(worker_id)) {}
  std::string Ended() override { return runtime_->EndedOf(worker_id_); }
  absl::Status Freeze() override {
    return absl::FailedPreconditionError("a worker's Pod cannot be frozen: stop the worker");
  }
  absl::Status Thaw() override { return absl::OkStatus(); }
  void Kill() override { runtime_->Remove(worker_id_); }

 private:
  KubernetesRuntime* runtime_;
  const std::string worker_id_;
};

KubernetesRuntime::KubernetesRuntime(std::shared_ptr<kubernetes::KubeClient> client,
                                     KubernetesRuntimeOptions options)
    : client_(std::move(client)), options_(std::move(options)) {
  watcher_ = std::thread([this] { WatchLoop(); });
}

KubernetesRuntime::~KubernetesRuntime() {
  stopping_ = true;
  if (watcher_.joinable()) watcher_.join();
}

std::string KubernetesRuntime::PodName(const std::string& worker_id) {
  return absl::StrCat("orch-", NamePart(worker_id));
}

std::string KubernetesRuntime::ClaimName(const std::string& workspace_id) {
  return absl::StrCat("orch-", NamePart(workspace_id));
}

absl::Status KubernetesRuntime::Available() {
  absl::MutexLock lock(&policy_mu_);
  if (network_policy_.ok()) return absl::OkStatus();
  // The workers' NetworkPolicy: in to them nothing, out only the mesh and DNS.
  json mesh_peer = {{"podSelector", {{"matchLabels", options_.mesh_pod_labels}}}};
  json mesh_rule = {{"to", json::array({mesh_peer})}};
  if (options_.mesh_port > 0) {
    mesh_rule["ports"] = json::array({{{"protocol", "TCP"}, {"port", options_.mesh_port}}});
  }
  json dns_rule = {{"to", json::array({{{"namespaceSelector", json::object()}}})},
                   {"ports", json::array({{{"protocol", "UDP"}, {"port", 53}},
                                          {{"protocol", "TCP"}, {"port", 53}}})}};
  json policy = {
      {"apiVersion", "networking.k8s.io/v1"},
      {"kind", "NetworkPolicy"},
      {"metadata", {{"name", kNetworkPolicyName}, {"labels", {{kManagedBy, "orchestrator"}}}}},
      {"spec",
       {{"podSelector",
         {{"matchExpressions", json::array({{{"key", kWorkerLabel}, {"operator", "Exists"}}})}}},
        {"policyTypes", json::array({"Ingress", "Egress"})},
        {"ingress", json::array()},
        {"egress", json::array({mesh_rule, dns_rule})}}}};
  auto made = client_->Create(kubernetes::kNetworkPolicies, policy);
  if (!made.ok() && made.status().code() == absl::StatusCode::kAlreadyExists) {
    made = client_->Patch(kubernetes::kNetworkPolicies, kNetworkPolicyName,
                          {{"spec", policy["spec"]}});
  }
  network_policy_ = made.status();
  return network_policy_;
}

absl::Status KubernetesRuntime::PrepareWorkspace(const std::string& workspace_id,
                                                 const std::string& owner_id) {
  json claim = {{"apiVersion", "v1"},
                {"kind", "PersistentVolumeClaim"},
                {"metadata",
                 {{"name", ClaimName(workspace_id)},
                  {"labels",
                   {{kManagedBy, "orchestrator"},
                    {kWorkspaceLabel, workspace_id},
                    {kOwnerLabel, owner_id}}}}},
                {"spec",
                 {{"accessModes", json::array({"ReadWriteOnce"})},
                  {"resources", {{"requests", {{"storage", options_.workspace_size}}}}}}}};
  if (!options_.storage_class.empty()) {
    claim["spec"]["storageClassName"] = options_.storage_class;
  }
  auto made = client_->Create(kubernetes::kPersistentVolumeClaims, claim);
  if (made.ok() || made.status().code() == absl::StatusCode::kAlreadyExists) {
    return absl::OkStatus();
  }
  return made.status();
}

absl::StatusOr<std::string> KubernetesRuntime::WorkspaceOwner(const std::string& workspace_id) {
  auto claim = client_->Get(kubernetes::kPersistentVolumeClaims, ClaimName(workspace_id));
  if (!claim.ok()) {
    if (claim.status().code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError(absl::StrCat("workspace '", workspace_id, "' not found"));
    }
    return claim.status();
  }
  const std::string owner = StringField(Sub(Sub(*claim, "metadata"), "labels"), kOwnerLabel);
  if (owner.empty()) {
    return absl::NotFoundError(absl::StrCat("workspace '", workspace_id, "' not found"));
  }
  return owner;
}

absl::StatusOr<std::unique_ptr<RunningWorker>> KubernetesRuntime::Start(
    const WorkerLaunch& launch) {
  if (!launch.egress_socket.empty()) {
    return absl::FailedPreconditionError(
        "config.network_mode: workers on Kubernetes have no egress proxy yet; only "
        "NETWORK_MODE_ISOLATED workers (e.g. the scripted agent) run there");
  }
  if (auto s = Available(); !s.ok()) return s;
  const std::string name = PodName(launch.worker_id);
  const json labels = {{kManagedBy, "orchestrator"},
                       {kWorkerLabel, launch.worker_id},
                       {kOwnerLabel, launch.owner_id}};
  // The runner's environment in a Secret only it reads: not in the Pod's
  // spec, which anyone who may list Pods reads.
  json secret = {{"apiVersion", "v1"},
                 {"kind", "Secret"},
                 {"type", "Opaque"},
                 {"metadata", {{"name", name}, {"labels", labels}}},
                 {"stringData", launch.env}};
  if (auto made = client_->Create(kubernetes::kSecrets, secret); !made.ok()) {
    if (made.status().code() != absl::StatusCode::kAlreadyExists) return made.status();
    if (auto s = client_->Replace(kubernetes::kSecrets, name, secret); !s.ok()) return s.status();
  }
  json limits = json::object();
  if (launch.memory_bytes > 0) limits["memory"] = absl::StrCat(launch.memory_bytes);
  if (launch.cpu_millis > 0) limits["cpu"] = absl::StrCat(launch.cpu_millis, "m");
  json container = {
      {"name", "runner"},
      {"image", options_.image},
      {"command", json::array({"orchestrator-runner"})},
      {"workingDir", "/workspace"},
      {"env", json::array({{{"name", "PATH"}, {"value", options_.path}},
                           {{"name", "HOME"}, {"value", "/home/agent"}},
                           {{"name", "LANG"}, {"value", "C.UTF-8"}},
                           {{"name", "ORCHESTRATOR_ADDR"}, {"value", options_.mesh_address}}})},
      {"envFrom", json::array({{{"secretRef", {{"name", name}}}}})},
      {"resources", {{"limits", limits}, {"requests", limits}}},
      {"securityContext",
       {{"allowPrivilegeEscalation", false},
        {"readOnlyRootFilesystem", true},
        {"capabilities", {{"drop", json::array({"ALL"})}}}}},
      {"volumeMounts",
       json::array({{{"name", "workspace"}, {"mountPath", "/workspace"}, {"subPath", "work"}},
                    {{"name", "workspace"}, {"mountPath", "/home/agent"}, {"subPath", "home"}},
                    {{"name", "tmp"}, {"mountPath", "/tmp"}}})}};
  json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", name}, {"labels", labels}}},
      {"spec",
       {{"restartPolicy", "Never"},
        {"automountServiceAccountToken", false},
        {"enableServiceLinks", false},
        {"terminationGracePeriodSeconds", 10},
        {"securityContext",
         {{"runAsUser", kAgentUid},
          {"runAsGroup", kAgentUid},
          {"fsGroup", kAgentUid},
          {"runAsNonRoot", true},
          {"seccompProfile", {{"type", "RuntimeDefault"}}}}},
        {"containers", json::array({container})},
        {"volumes",
         json::array({{{"name", "workspace"},
                       {"persistentVolumeClaim", {{"claimName", ClaimName(launch.workspace_id)}}}},
                      {{"name", "tmp"}, {"emptyDir", json::object()}}})}}}};
  {
    absl::MutexLock lock(&mu_);
    ended_.erase(launch.worker_id);
    started_.insert(launch.worker_id);
  }
  auto made = client_->Create(kubernetes::kPods, pod);
  if (!made.ok()) {
    Remove(launch.worker_id);  // its Secret
    return made.status();
  }
  {
    absl::MutexLock lock(&mu_);
    created_[launch.worker_id] = absl::Now();
  }
  // The Secret goes with the Pod, whoever deletes it.
  json owner = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"name", name},
                {"uid", StringField(Sub(*made, "metadata"), "uid")}};
  if (auto s = client_->Patch(kubernetes::kSecrets, name,
                              {{"metadata", {{"ownerReferences", json::array({owner})}}}});
      !s.ok()) {
    spdlog::warn("agents: the Secret of Pod {} is not owned by it: {}", name,
                 s.status().ToString());
  }
  return std::make_unique<PodWorker>(this, launch.worker_id);
}

std::string KubernetesRuntime::EndedOf(const std::string& worker_id) {
  absl::MutexLock lock(&mu_);
  auto it = ended_.find(worker_id);
  return it == ended_.end() ? "" : it->second;
}

void KubernetesRuntime::Remove(const std::string& worker_id) {
  {
    absl::MutexLock lock(&mu_);
    started_.erase(worker_id);
    created_.erase(worker_id);
    ended_.erase(worker_id);
  }
  const std::string name = PodName(worker_id);
  for (const auto* resource : {&kubernetes::kPods, &kubernetes::kSecrets}) {
    if (auto s = client_->Delete(*resource, name, absl::Seconds(5));
        !s.ok() && s.code() != absl::StatusCode::kNotFound) {
      spdlog::warn("agents: {}", s.ToString());
    }
  }
}

void KubernetesRuntime::Forget(const std::string& worker_id) { Remove(worker_id); }

void KubernetesRuntime::Saw(const std::string& type, const json& pod) {
  const std::string worker = StringField(Sub(Sub(pod, "metadata"), "labels"), kWorkerLabel);
  if (worker.empty()) return;
  std::string why =
      type == "DELETED"
          ? absl::StrCat("its Pod ", StringField(Sub(pod, "metadata"), "name"), " was deleted")
          : WhyEnded(pod);
  if (why.empty()) return;
  absl::MutexLock lock(&mu_);
  if (!started_.count(worker)) return;     // not one of this process's workers (any more)
  ended_.emplace(worker, std::move(why));  // the first reason stays
}

void KubernetesRuntime::WatchLoop() {
  const std::string selector = kWorkerLabel;
  absl::Duration pause = absl::ZeroDuration();
  while (!stopping_) {
    const absl::Time listed_at = absl::Now();
    auto list = client_->List(kubernetes::kPods, selector);
    if (!list.ok()) {
      spdlog::warn("agents: listing the workers' Pods: {}", list.status().ToString());
      for (int i = 0; i < 20 && !stopping_; ++i) absl::SleepFor(absl::Milliseconds(100));
      continue;
    }
    std::set<std::string> listed;
    for (const auto& pod : (*list)["items"]) {
      listed.insert(StringField(Sub(Sub(pod, "metadata"), "labels"), kWorkerLabel));
      Saw("ADDED", pod);
    }
    {
      // A Pod that went while no watch ran (an outage, a gone version)
      // is in no list: its worker is over.
      absl::MutexLock lock(&mu_);
      for (const auto& [worker, created] : created_) {
        if (created < listed_at && !listed.count(worker)) {
          ended_.emplace(worker, absl::StrCat("its Pod ", PodName(worker), " is gone"));
        }
      }
    }
    std::string version = StringField(Sub(*list, "metadata"), "resourceVersion");
    while (!stopping_) {
      const absl::Time began = absl::Now();
      absl::Status s = client_->Watch(
          kubernetes::kPods, selector, version,
          [&](const kubernetes::WatchEvent& event) {
            const std::string v = StringField(Sub(event.object, "metadata"), "resourceVersion");
            if (!v.empty()) version = v;
            if (event.type != "BOOKMARK") Saw(event.type, event.object);
            return true;
          },
          &stopping_, absl::Minutes(5));
      // A watch that fails or ends at once is tried again after a pause
      // that doubles (up to 30 s): never a loop of requests.
      const bool quick = absl::Now() - began < absl::Seconds(1);
      pause = (!s.ok() || quick)
                  ? std::min(absl::Seconds(30), std::max(absl::Milliseconds(500), pause * 2))
                  : absl::ZeroDuration();
      for (absl::Duration slept; slept < pause && !stopping_; slept += absl::Milliseconds(100)) {
        absl::SleepFor(absl::Milliseconds(100));
      }
      if (!s.ok()) {
        if (s.code() != absl::StatusCode::kCancelled) {
          spdlog::warn("agents: watching the workers' Pods: {}", s.ToString());
        }
        break;  // list again
      }
    }
  }
}

}  // namespace orchestrator::agents
