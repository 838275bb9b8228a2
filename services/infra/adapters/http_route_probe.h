#pragma once

#include <string>

#include "services/infra/domain/diagnostics_ports.h"

namespace orchestrator::infra {

// RouteProbe over HTTP/1.1 to where the router serves the projects
// (MeshConfig::router_listen: "HOST:PORT", or ":PORT" for every address,
// asked at 127.0.0.1), with the project's host name as Host.
class HttpRouteProbe final : public RouteProbe {
 public:
  explicit HttpRouteProbe(std::string router_listen) : listen_(std::move(router_listen)) {}

  absl::StatusOr<int> Get(const std::string& host, const std::string& path,
                          absl::Duration timeout) override;

 private:
  std::string listen_;
};

}  // namespace orchestrator::infra
