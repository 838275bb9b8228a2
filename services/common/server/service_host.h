#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/server.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "services/common/auth/token_verifier.h"
#include "services/common/rpc/method_access.h"
#include "services/common/rpc/rpc_interceptor.h"

namespace google::protobuf {
class ServiceDescriptor;
}

namespace orchestrator {

struct HostOptions {
  std::string listen = "127.0.0.1:0";
  std::chrono::milliseconds drain_deadline{10000};
  // More addresses serving the same services (e.g. the unix socket
  // sandboxes reach the mesh on); may be added until Start.
  std::vector<std::string> also_listen = {};
  CallRateLimits rate_limits = {};
  // Callers presenting it are the mesh; null: none is.
  MeshCredentialPtr mesh_credential = nullptr;
};

// One gRPC server hosting any set of components: the RPC interceptor on
// every call, health per component (plus "" for the whole process),
// reflection, an in-process channel for co-hosted components, and a
// graceful shutdown that reports NOT_SERVING first, then drains.
class ServiceHost final {
 public:
  explicit ServiceHost(HostOptions options);
  ~ServiceHost();

  // Registers a service (not owned; must outlive the host) under its full
  // name, e.g. Service::service_full_name().
  void Register(grpc::Service* service, absl::string_view full_name);

  // Another address for the same services; before Start.
  void AlsoListen(const std::string& address) { options_.also_listen.push_back(address); }

  // The verifier may be set after Register, before Start.
  void SetTokenVerifier(TokenVerifierPtr verifier) {
    absl::MutexLock lock(&verifier_mu_);
    verifier_ = std::move(verifier);
  }
  // The same verifier, for a component's own listener (git over HTTP); null
  // until set.
  TokenVerifierPtr token_verifier() const {
    absl::MutexLock lock(&verifier_mu_);
    return verifier_;
  }

  // Binds and starts serving; INVALID_ARGUMENT for a contract without
  // permissions, UNAVAILABLE when the address cannot be bound.
  absl::Status Start();

  // The bound port (useful with port 0).
  int port() const { return port_; }
  std::string address() const;

  // A channel to this very server, without a socket.
  std::shared_ptr<grpc::Channel> InProcessChannel();

  // Reports every component NOT_SERVING at once (calls are still served):
  // the first step of a shutdown, before anything drains.
  void StopServing();

  // Marks every component NOT_SERVING, stops accepting calls and waits up to
  // the drain deadline for calls in flight, then cancels the rest.
  void Shutdown();
  // The same, with the calls in flight given until `deadline`.
  void Shutdown(std::chrono::system_clock::time_point deadline);
  void Wait();

 private:
  HostOptions options_;
  std::vector<std::pair<grpc::Service*, std::string>> services_;
  mutable absl::Mutex verifier_mu_;
  TokenVerifierPtr verifier_ ABSL_GUARDED_BY(verifier_mu_);
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace orchestrator
