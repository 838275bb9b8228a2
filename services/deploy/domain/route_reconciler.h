#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/common/router/router.h"
#include "services/deploy/domain/deploy_ports.h"
#include "services/deploy/domain/release_store.h"

namespace orchestrator::deploy {

// The database is the source of truth: the front door's routes are made
// exactly those of the LIVE releases (a restarted Caddy, or a switch lost
// in a crash, loses nothing), and containers of releases that are no
// longer live are removed. On every server: the local one, and each one a
// LIVE release runs on (a server that cannot be reached now is skipped and
// reported; the others are reconciled all the same).
class RouteReconciler {
 public:
  // `route_mu`: the Deployer's (held while routes are made);
  // `installation`: the containers it may remove carry it.
  RouteReconciler(ReleaseStorePtr releases, std::shared_ptr<ServerTargets> servers,
                  std::shared_ptr<absl::Mutex> route_mu, std::string installation)
      : releases_(std::move(releases)),
        servers_(std::move(servers)),
        route_mu_(std::move(route_mu)),
        installation_(std::move(installation)) {}

  // What changed, for the log.
  absl::StatusOr<router::ReconcileReport> ReconcileRoutes();
  // Containers of this installation removed: those of FAILED or SUPERSEDED
  // (and drained) releases, or of none.
  absl::StatusOr<int> RemoveOrphans();

 private:
  ReleaseStorePtr releases_;
  // The servers to visit, each with its LIVE releases.
  struct Visit {
    ServerTarget at;
    std::vector<v1::Release> live;
  };
  absl::StatusOr<std::vector<Visit>> Servers(absl::Status* unreachable);
  absl::StatusOr<int> RemoveOrphansOn(containers::ContainerEngine& engine);

  std::shared_ptr<ServerTargets> servers_;
  std::shared_ptr<absl::Mutex> route_mu_;
  std::string installation_;
};

}  // namespace orchestrator::deploy
