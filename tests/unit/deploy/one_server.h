// ServerTargets for unit tests: every server id is the one local server,
// with the engine, router and probe the test gives.
#pragma once

#include <memory>
#include <string>

#include "services/deploy/domain/deploy_ports.h"

namespace orchestrator::deploy {

class OneServer final : public ServerTargets {
 public:
  OneServer(containers::ContainerEnginePtr engine, std::shared_ptr<router::Router> router,
            std::shared_ptr<HealthProbe> probe) {
    local_.server_name = "local";
    local_.engine = std::move(engine);
    local_.router = std::move(router);
    local_.probe = std::move(probe);
  }
  absl::StatusOr<ServerTarget> For(const std::string&, const std::string& server_id) override {
    ServerTarget target = local_;
    target.server_id = server_id;
    return target;
  }
  const ServerTarget& Local() const override { return local_; }

 private:
  ServerTarget local_;
};

inline std::shared_ptr<ServerTargets> ProbedBy(std::shared_ptr<HealthProbe> probe) {
  return std::make_shared<OneServer>(nullptr, nullptr, std::move(probe));
}

}  // namespace orchestrator::deploy
