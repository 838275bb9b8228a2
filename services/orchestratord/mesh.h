#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/impl/service_type.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/auth/token_verifier.h"
#include "services/common/config/mesh_config.h"
#include "services/common/db/pool.h"
#include "services/common/executor/bounded_executor.h"
#include "services/common/server/service_host.h"

namespace orchestrator {

// The components named in --services, wired into one ServiceHost: their
// stores on one connection pool (each in its own schema, migrated at
// start), their domains, their gRPC adapters, and the token verifier every
// call goes through. Co-hosted components reach each other through the
// host's in-process channel, remote ones through --<svc>_addr.
class Mesh final {
 public:
  static absl::StatusOr<std::unique_ptr<Mesh>> Create(const MeshConfig& config);
  ~Mesh();

  absl::Status Start();
  void Shutdown();
  void Wait();

  int port() const { return host_.port(); }
  std::string address() const { return host_.address(); }

  // A channel to `component`: in-process when hosted here, else its address.
  std::shared_ptr<grpc::Channel> ChannelTo(const std::string& component);

 private:
  explicit Mesh(const MeshConfig& config);
  absl::Status Build();
  absl::Status WriteBootstrapToken(const std::string& token) const;
  absl::Status BuildSessions();

  const MeshConfig config_;
  ServiceHost host_;
  BoundedExecutorPtr executor_;
  db::PoolPtr pool_;
  std::shared_ptr<CachingTokenVerifier> verifier_;
  std::vector<std::shared_ptr<void>> parts_;  // domains and stores kept alive
  std::vector<std::unique_ptr<grpc::Service>> services_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> remote_channels_;
  // The job engine's moving parts, when jobs is hosted here.
  std::shared_ptr<void> job_hub_;
  std::shared_ptr<void> job_worker_;
  // Stop steps that drain are given the one shutdown deadline.
  std::function<void(absl::Time)> stop_jobs_;
  std::function<void()> stop_job_events_;
  std::function<void()> stop_agents_;
  std::function<void(absl::Time)> stop_sessions_;
  std::function<void()> start_sessions_;  // once serving: turns a restart cut off
  std::shared_ptr<void> spawner_;         // the agent spawner, for sessions
  std::shared_ptr<void> catalog_;         // the project catalog, for workers' secrets
};

}  // namespace orchestrator
