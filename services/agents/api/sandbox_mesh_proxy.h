#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/server.h>

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace orchestrator::agents {

// The mesh as a sandbox sees it: one unix socket bound into every sandbox,
// on which any call of our contracts is forwarded, bytes and metadata as
// they are, to the component serving it (its runner to RunnerService here,
// its CLI to ProjectService wherever that runs). Nothing is decided here:
// the component called authenticates the agent's token, authorizes and
// bounds the call like any other. Calls to anything else are UNIMPLEMENTED
// (health and reflection are the proxy server's own, as on every server of
// the process: they tell only that it is up).
class SandboxMeshProxy final {
 public:
  using ChannelTo = std::function<std::shared_ptr<grpc::Channel>(const std::string& component)>;

  // Serves `unix_socket` (a path; replaced if it exists), and `tcp_listen`
  // (host:port, for workers in Pods; "" for none), forwarding to the mesh's
  // `components` only.
  static absl::StatusOr<std::unique_ptr<SandboxMeshProxy>> Start(const std::string& unix_socket,
                                                                 const std::string& tcp_listen,
                                                                 std::set<std::string> components,
                                                                 ChannelTo channel_to);
  ~SandboxMeshProxy();

  // Stops accepting; calls still open are cancelled at `deadline`.
  void Shutdown(std::chrono::system_clock::time_point deadline);

  // "/orchestrator.projects.v1.ProjectService/GetProject" → "projects";
  // "" for a method outside our contracts.
  static std::string ComponentOfMethod(absl::string_view method);

  class Service;

 private:
  SandboxMeshProxy() = default;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace orchestrator::agents
