#include "services/deploy/domain/route_reconciler.h"

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "services/deploy/domain/deployer.h"

namespace orchestrator::deploy {
namespace {

// Longer than any deploy's drain and stop.
constexpr absl::Duration kDrainAllowance = absl::Minutes(2);

// The host of a release's URL ("http://host:port/..." → "host").
}  // namespace

absl::StatusOr<router::ReconcileReport> RouteReconciler::ReconcileRoutes() {
  absl::MutexLock lock(route_mu_.get());
  auto live = releases_->AllLive();
  if (!live.ok()) return live.status();
  std::vector<router::Route> desired;
  for (const auto& release : *live) {
    if (release.port() == 0 || release.url().empty()) continue;
    desired.push_back(RouteOf(release, router::HostOfUrl(release.url())));
  }
  return router_->Reconcile(desired);
}

absl::StatusOr<int> RouteReconciler::RemoveOrphans() {
  auto managed = engine_->ListContainers(
      {{kReleaseLabel, std::nullopt}, {kInstallationLabel, installation_}}, true);
  if (!managed.ok()) return managed.status();
  int removed = 0;
  for (const auto& c : *managed) {
    auto release = releases_->Get(c.labels.at(kReleaseLabel));
    if (release.ok() && (release->status() == v1::RELEASE_STATUS_LIVE ||
                         release->status() == v1::RELEASE_STATUS_DEPLOYING)) {
      continue;
    }
    // The deploy that superseded it drains it first (its requests in
    // flight finish there): not before that could be over.
    if (release.ok() && release->status() == v1::RELEASE_STATUS_SUPERSEDED &&
        absl::Now() - absl::FromUnixSeconds(release->superseded_time().seconds()) <
            kDrainAllowance) {
      continue;
    }
    if (!release.ok() && release.status().code() != absl::StatusCode::kNotFound) {
      return release.status();
    }
    if (engine_->RemoveContainer(c.id, true).ok()) ++removed;
  }
  return removed;
}

}  // namespace orchestrator::deploy
