#pragma once

#include "services/deploy/domain/deploy_ports.h"

namespace orchestrator::deploy {

// HealthProbe over HTTP/1.1 to 127.0.0.1 (the port a container is
// published on).
class HttpHealthProbe final : public HealthProbe {
 public:
  absl::StatusOr<int> Get(int port, const std::string& path, absl::Duration timeout) override;
};

}  // namespace orchestrator::deploy
