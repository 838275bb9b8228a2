#pragma once

#include <grpcpp/channel.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "services/common/auth/mesh_identity.h"
#include "services/common/auth/token_verifier.h"
#include "services/common/component/component.h"
#include "services/common/config/mesh_config.h"
#include "services/common/db/pool.h"
#include "services/common/executor/bounded_executor.h"
#include "services/common/server/service_host.h"

namespace orchestrator {

// The components named in --services (from the one list, Components()),
// built in its order into one ServiceHost: their schemas migrated on one
// connection pool, then each component from a ComponentContext. They reach
// each other only through stubs over ChannelTo: the host's in-process
// channel when co-hosted, --<name>_addr otherwise.
class Mesh final {
 public:
  static absl::StatusOr<std::unique_ptr<Mesh>> Create(const MeshConfig& config);
  ~Mesh();

  absl::Status Start();
  void Shutdown();
  void Wait();

  int port() const { return host_.port(); }
  std::string address() const { return host_.address(); }

  // A channel to `component`: in-process when hosted here (once serving:
  // a caller asking earlier waits for it), else its address.
  std::shared_ptr<grpc::Channel> ChannelTo(const std::string& component);

 private:
  explicit Mesh(const MeshConfig& config, MeshCredentialPtr mesh);
  absl::Status Build();

  const MeshConfig config_;
  const MeshCredentialPtr mesh_;
  // Declared before the components: destroyed after them.
  BoundedExecutorPtr executor_;
  db::PoolPtr pool_;
  ServiceHost host_;
  std::shared_ptr<CachingTokenVerifier> verifier_;
  absl::Mutex channels_mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_ ABSL_GUARDED_BY(channels_mu_);
  absl::Notification serving_or_over_;
  bool serving_ = false;  // set before serving_or_over_ is notified
  // In build order; destroyed in reverse.
  std::vector<std::unique_ptr<Component>> components_;
  bool shut_down_ = false;
};

}  // namespace orchestrator
