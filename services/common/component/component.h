#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/impl/service_type.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/auth/mesh_identity.h"
#include "services/common/auth/token_verifier.h"
#include "services/common/component/periodic_task.h"
#include "services/common/config/mesh_config.h"
#include "services/common/db/migrations.h"
#include "services/common/db/pool.h"
#include "services/common/executor/bounded_executor.h"
#include "services/common/peers/project_visibility.h"
#include "services/common/server/service_host.h"

namespace orchestrator {

// What a component is built from. It reaches its peers only through their
// stubs over `ChannelTo` (in-process when co-hosted, else --<peer>_addr),
// as the mesh with `mesh` or as its caller (CredentialsOf).
struct ComponentContext {
  const MeshConfig& config;
  db::PoolPtr pool;
  BoundedExecutorPtr executor;
  MeshCredentialPtr mesh;
  ServiceHost& host;
  std::function<std::shared_ptr<grpc::Channel>(const std::string& component)> channel_to;
  // Every component of the mesh, hosted here or not.
  std::vector<std::string> components;
  // Whether `component` is part of this mesh: hosted here or named by
  // --<component>_addr (for optional peers).
  std::function<bool(const std::string& component)> reaches;
  // Project ids a request names, checked with ProjectService as the caller.
  ProjectVisibilityPtr project_visibility;
  std::chrono::milliseconds call_deadline;
  // The periodic tasks every component of the mesh declares (hosted here
  // or not): what the scheduler schedules.
  std::vector<PeriodicTask> periodic_tasks = {};
};

// A component built and running in this process. It owns its parts as
// typed members, declared in dependency order: destroying it stops them in
// reverse (a worker before the store it writes to).
class Component {
 public:
  virtual ~Component() = default;
  // Once the server serves (e.g. turns a restart cut off run again: their
  // workers connect back to it).
  virtual void Start() {}
  // The shutdown's first step, at once in every component: stop taking new
  // work and start draining what drains on its own, without blocking
  // (`deadline` is the one deadline of the whole shutdown).
  virtual void BeginDrain(absl::Time deadline) { (void)deadline; }
  // Then, in reverse build order (a component before the peers it uses),
  // before the gRPC drain: finish what must end before the peers go; may
  // block, never past `deadline`.
  virtual void Drain(absl::Time deadline) { (void)deadline; }
  // After the gRPC drain: the rest (e.g. stop listening to the database).
  virtual void Stop() {}
  // The admin component only: verifies tokens itself (asking ourselves
  // over a channel would recurse), and tells when a verified token may
  // have stopped working.
  virtual TokenVerifierPtr LocalTokenVerifier() { return nullptr; }
  virtual void OnCredentialsChanged(std::function<void()> forget) { (void)forget; }

 protected:
  // Registers `service` with the host; the component keeps it alive.
  void Serve(ServiceHost& host, std::unique_ptr<grpc::Service> service, absl::string_view name) {
    host.Register(service.get(), name);
    services_.push_back(std::move(service));
  }

 private:
  std::vector<std::unique_ptr<grpc::Service>> services_;
};

// One entry of the mesh's component list: everything orchestratord, the
// tests, the gateway's upstreams and the Helm chart need to know of it.
struct ComponentSpec {
  std::string name;     // "projects": --services, --projects_addr, the Deployment
  std::string service;  // its contract's service, e.g. "orchestrator.projects.v1.ProjectService"
  // Components it calls: each must be hosted here or named by --<peer>_addr.
  std::vector<std::string> peers;
  // Components it calls when they are part of the mesh (hosted here or
  // named by --<peer>_addr; ComponentContext::reaches): without one, what
  // needs it is left out and says so (e.g. a history without messages).
  std::vector<std::string> optional_peers = {};
  // Its schema, applied before it is built; null when it keeps no state.
  const db::MigrationSet& (*migrations)() = nullptr;
  // Reads the flags it declares (in its component.cc) into the config;
  // INVALID_ARGUMENT naming the flag. Null when it has none.
  std::function<absl::Status(MeshConfig&)> read_flags;
  std::function<absl::StatusOr<std::unique_ptr<Component>>(ComponentContext&)> build;
  // Its periodic upkeep: the scheduler starts each as a job of its kind,
  // which this component's job engine runs.
  std::vector<PeriodicTask> periodic_tasks = {};
};

// A component whose contract exists but whose implementation is not built
// yet: reflection lists it, the interceptor authenticates its calls, and
// every RPC answers UNIMPLEMENTED.
template <typename Service>
ComponentSpec ContractOnlyComponent(std::string name) {
  ComponentSpec spec;
  spec.name = std::move(name);
  spec.service = Service::service_full_name();
  spec.build = [](ComponentContext& ctx) -> absl::StatusOr<std::unique_ptr<Component>> {
    class ContractOnly final : public Component {
     public:
      explicit ContractOnly(ServiceHost& host) {
        Serve(host, std::make_unique<typename Service::CallbackService>(),
              Service::service_full_name());
      }
    };
    return std::make_unique<ContractOnly>(ctx.host);
  };
  return spec;
}

}  // namespace orchestrator
