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
  // `route_mu`: the Deployer's (held while routes are made).
  RouteReconciler(ReleaseStorePtr releases, std::shared_ptr<router::Router> router,
                  containers::ContainerEnginePtr engine, std::shared_ptr<absl::Mutex> route_mu)
      : releases_(std::move(releases)),
        router_(std::move(router)),
        engine_(std::move(engine)),
        route_mu_(std::move(route_mu)) {}

  // What changed, for the log.
  absl::StatusOr<router::ReconcileReport> ReconcileRoutes();
  // Containers removed: those of FAILED or SUPERSEDED releases, or of none.
  absl::StatusOr<int> RemoveOrphans();

 private:
  ReleaseStorePtr releases_;
  std::shared_ptr<router::Router> router_;
  containers::ContainerEnginePtr engine_;
  std::shared_ptr<absl::Mutex> route_mu_;
};

}  // namespace orchestrator::deploy
