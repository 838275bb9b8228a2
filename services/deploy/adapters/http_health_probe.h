#pragma once

#include <functional>
#include <string>

#include "services/deploy/domain/deploy_ports.h"

namespace orchestrator::deploy {

// HealthProbe over HTTP/1.1 to the port a container is published on: on
// 127.0.0.1, or where `address_of` says that port is reached ("HOST:PORT"
// or "unix:///PATH", e.g. a socket an SSH tunnel forwards to the port on
// a remote server's loopback).
class HttpHealthProbe final : public HealthProbe {
 public:
  using AddressOf = std::function<absl::StatusOr<std::string>(int port)>;
  explicit HttpHealthProbe(AddressOf address_of = nullptr) : address_of_(std::move(address_of)) {}

  absl::StatusOr<int> Get(int port, const std::string& path, absl::Duration timeout) override;

 private:
  AddressOf address_of_;
};

}  // namespace orchestrator::deploy
