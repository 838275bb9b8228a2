#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "services/infra/domain/diagnostics_ports.h"

namespace orchestrator::infra {

// RouteProbe over HTTP/1.1 to where the router serves the projects
// ("HOST:PORT", or ":PORT" for every address, asked at 127.0.0.1), with
// the project's host name as Host. On a remote server the router's port on
// its loopback is reached where `address_of` says ("unix:///PATH", a
// socket its SSH tunnel forwards there).
class HttpRouteProbe final : public RouteProbe {
 public:
  using AddressOf = std::function<absl::StatusOr<std::string>(int port)>;
  explicit HttpRouteProbe(std::string router_listen, AddressOf address_of = nullptr)
      : listen_(std::move(router_listen)), address_of_(std::move(address_of)) {}

  absl::StatusOr<int> Get(const std::string& host, const std::string& path,
                          absl::Duration timeout) override;

 private:
  std::string listen_;
  AddressOf address_of_;
};

}  // namespace orchestrator::infra
