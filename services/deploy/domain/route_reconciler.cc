#include "services/deploy/domain/route_reconciler.h"

#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "services/deploy/domain/deployer.h"

namespace orchestrator::deploy {
namespace {

// Longer than any deploy's drain and stop.
constexpr absl::Duration kDrainAllowance = absl::Minutes(2);

// The host of a release's URL ("http://host:port/..." → "host").
}  // namespace

absl::StatusOr<std::vector<RouteReconciler::Visit>> RouteReconciler::Servers(
    absl::Status* unreachable) {
  auto live = releases_->AllLive();
  if (!live.ok()) return live.status();
  std::map<std::string, Visit> by_server;
  std::set<std::string> away;
  for (const auto& release : *live) {
    if (away.count(release.server_id())) continue;
    auto it = by_server.find(release.server_id());
    if (it == by_server.end()) {
      auto at = servers_->For(release.owner_id(), release.server_id());
      if (!at.ok()) {
        if (unreachable->ok()) {
          *unreachable = absl::Status(
              at.status().code(),
              absl::StrCat("server ", release.server_id(), ": ", at.status().message()));
        }
        away.insert(release.server_id());
        continue;
      }
      it = by_server.emplace(release.server_id(), Visit{*std::move(at), {}}).first;
    }
    it->second.live.push_back(release);
  }
  std::vector<Visit> visits;
  bool local = false;
  for (auto& [id, visit] : by_server) {
    local |= !visit.at.remote;
    visits.push_back(std::move(visit));
  }
  // The local router even with nothing live (its stale routes go), but
  // never when a server could not be told apart: its releases may be the
  // local ones, whose routes an empty list would remove.
  if (!local && away.empty()) visits.push_back(Visit{servers_->Local(), {}});
  return visits;
}

absl::StatusOr<router::ReconcileReport> RouteReconciler::ReconcileRoutes() {
  // The servers are reached first: a slow one must not hold up switches.
  absl::Status first_error;
  auto servers = Servers(&first_error);
  if (!servers.ok()) return servers.status();
  absl::MutexLock lock(route_mu_.get());
  // Read again under the lock: a switch may have happened meanwhile.
  auto visits = Servers(&first_error);
  if (!visits.ok()) return visits.status();
  router::ReconcileReport total;
  for (const Visit& visit : *visits) {
    std::vector<router::Route> desired;
    for (const auto& release : visit.live) {
      if (release.port() == 0 || release.url().empty()) continue;
      desired.push_back(RouteOf(release, router::HostOfUrl(release.url())));
    }
    auto report = visit.at.router->Reconcile(desired);
    if (!report.ok()) {
      if (first_error.ok()) first_error = report.status();
      continue;
    }
    total.server_changed |= report->server_changed;
    const auto append = [](std::vector<std::string>& into, const std::vector<std::string>& from) {
      into.insert(into.end(), from.begin(), from.end());
    };
    append(total.added, report->added);
    append(total.updated, report->updated);
    append(total.removed, report->removed);
  }
  if (!first_error.ok()) return first_error;
  return total;
}

absl::StatusOr<int> RouteReconciler::RemoveOrphans() {
  absl::Status first_error;
  auto visits = Servers(&first_error);
  if (!visits.ok()) return visits.status();
  int removed = 0;
  for (const Visit& visit : *visits) {
    auto from = RemoveOrphansOn(*visit.at.engine);
    if (!from.ok()) {
      if (first_error.ok()) first_error = from.status();
      continue;
    }
    removed += *from;
  }
  if (!first_error.ok()) return first_error;
  return removed;
}

absl::StatusOr<int> RouteReconciler::RemoveOrphansOn(containers::ContainerEngine& engine) {
  auto managed = engine.ListContainers(
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
    if (engine.RemoveContainer(c.id, true).ok()) ++removed;
  }
  return removed;
}

}  // namespace orchestrator::deploy
