#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/agents/runtime/worker_runtime.h"
#include "services/common/kubernetes/kube_client.h"

namespace orchestrator::agents {

// What workers on Kubernetes run as and reach.
struct KubernetesRuntimeOptions {
  // The product image: orchestrator-runner and orchestrator on its PATH.
  std::string image;
  // host:port the Pods reach the mesh (the agents component's gRPC port) on.
  std::string mesh_address;
  // The labels of the mesh's Pods, and the port: the only place a worker's
  // Pod may connect to (its NetworkPolicy), besides the cluster's DNS.
  std::map<std::string, std::string> mesh_pod_labels;
  int mesh_port = 0;
  // Each workspace's PersistentVolumeClaim.
  std::string workspace_size = "1Gi";
  std::string storage_class;  // "" = the cluster's default
  // PATH inside the Pod.
  std::string path = "/usr/local/bin:/usr/bin:/bin";
};

// Workers as Pods: one Pod each (restartPolicy Never) from the product image
// running orchestrator-runner as uid 1000 with no privileges, no service
// account token and a read-only root, which connects back to the mesh over
// TCP with its token; the runner's environment (token, granted secrets,
// the operator's keys) in a Secret of its own that the Pod reads (never in
// the Pod's spec), owned by the Pod; the workspace on a PersistentVolumeClaim
// per workspace (work → /workspace, home → /home/agent), so a session's next
// worker finds its files; CPU and memory limits from the worker's config;
// a NetworkPolicy letting workers reach only the mesh and DNS. A watch of the
// workers' Pods tells within seconds when one is deleted, evicted, crashed or
// cannot start. Pods cannot be frozen: pausing stops the worker.
//
// Workers with network (NETWORK_MODE_OPEN) are refused: there is no egress
// proxy for Pods yet.
class KubernetesRuntime final : public WorkerRuntime {
 public:
  KubernetesRuntime(std::shared_ptr<kubernetes::KubeClient> client,
                    KubernetesRuntimeOptions options);
  ~KubernetesRuntime() override;

  absl::Status Available() override;
  absl::Status PrepareWorkspace(const std::string& workspace_id,
                                const std::string& owner_id) override;
  absl::StatusOr<std::string> WorkspaceOwner(const std::string& workspace_id) override;
  absl::StatusOr<std::unique_ptr<RunningWorker>> Start(const WorkerLaunch& launch) override;
  bool CanFreeze() const override { return false; }
  void Forget(const std::string& worker_id) override;

  // The names it gives a worker's Pod (and Secret) and a workspace's claim.
  static std::string PodName(const std::string& worker_id);
  static std::string ClaimName(const std::string& workspace_id);

 private:
  class PodWorker;

  // Why worker `worker_id`'s Pod ended ("" while it runs or is unseen).
  std::string EndedOf(const std::string& worker_id);
  void Remove(const std::string& worker_id);
  // Follows the workers' Pods (list, then watch from its version; again
  // after an error or a gone version) into ended_.
  void WatchLoop();
  void Saw(const std::string& type, const nlohmann::json& pod);

  std::shared_ptr<kubernetes::KubeClient> client_;
  const KubernetesRuntimeOptions options_;
  absl::Mutex mu_;
  std::set<std::string> started_ ABSL_GUARDED_BY(mu_);  // live workers started here
  std::map<std::string, std::string> ended_ ABSL_GUARDED_BY(mu_);
  // Of those, whose Pod was created, and when.
  std::map<std::string, absl::Time> created_ ABSL_GUARDED_BY(mu_);
  // Never held across a call to the API server with mu_ (the spawner reads
  // Ended() with a worker's lock held).
  absl::Mutex policy_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  absl::Status network_policy_ ABSL_GUARDED_BY(policy_mu_) = absl::UnknownError("not made yet");
  std::atomic<bool> stopping_{false};
  std::thread watcher_;
};

}  // namespace orchestrator::agents
