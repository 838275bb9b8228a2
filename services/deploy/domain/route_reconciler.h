#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/common/containers/container_engine.h"
#include "services/common/router/router.h"
#include "services/deploy/domain/release_store.h"

namespace orchestrator::deploy {

// The database is the source of truth: the front door's routes are made
// exactly those of the LIVE releases (a restarted Caddy, or a switch lost
// in a crash, loses nothing), and containers of releases that are no
// longer live are removed.
class RouteReconciler {
 public:
  // `route_mu`: the Deployer's (held while routes are made);
  // `installation`: the containers it may remove carry it.
  RouteReconciler(ReleaseStorePtr releases, std::shared_ptr<router::Router> router,
                  containers::ContainerEnginePtr engine, std::shared_ptr<absl::Mutex> route_mu,
                  std::string installation)
      : releases_(std::move(releases)),
        router_(std::move(router)),
        engine_(std::move(engine)),
        route_mu_(std::move(route_mu)),
        installation_(std::move(installation)) {}

  // What changed, for the log.
  absl::StatusOr<router::ReconcileReport> ReconcileRoutes();
  // Containers of this installation removed: those of FAILED or SUPERSEDED
  // (and drained) releases, or of none.
  absl::StatusOr<int> RemoveOrphans();

 private:
  ReleaseStorePtr releases_;
  std::shared_ptr<router::Router> router_;
  containers::ContainerEnginePtr engine_;
  std::shared_ptr<absl::Mutex> route_mu_;
  std::string installation_;
};

}  // namespace orchestrator::deploy
