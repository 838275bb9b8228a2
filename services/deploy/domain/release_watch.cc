#include "services/deploy/domain/release_watch.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "services/deploy/domain/deployer.h"

namespace orchestrator::deploy {

using google::protobuf::util::TimeUtil;

absl::StatusOr<std::vector<std::string>> ReleaseWatch::Tick() {
  auto live = releases_->AllLive();
  if (!live.ok()) return live.status();
  const absl::Time now = clock_();
  std::vector<std::string> rolled_back;
  absl::Status first_error;
  for (const v1::Release& release : *live) {
    // Not started yet, rolled back already, or out of its window.
    if (release.port() == 0 || release.health_path().empty() || !release.has_live_time() ||
        !release.failure_reason().empty()) {
      continue;
    }
    const absl::Time live_at =
        absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(release.live_time()));
    if (now - live_at > options_.window) continue;
    // A server the mesh cannot reach now says nothing of the release's
    // health: not counted (its users may be served all the while).
    auto at = servers_->For(release.owner_id(), release.server_id());
    if (!at.ok()) continue;  // (infra's probe marks the server UNREACHABLE)
    auto status = at->probe->Get(release.port(), release.health_path(), options_.probe_timeout);
    if (status.status().code() == absl::StatusCode::kFailedPrecondition) continue;
    const bool passed = status.ok() && *status == 200;
    // Counted in the database: the next probe may run on another replica.
    auto failed = releases_->RecordProbe(release.id(), passed);
    if (!failed.ok()) {
      if (first_error.ok()) first_error = failed.status();
      continue;
    }
    if (passed || *failed < options_.failures) continue;
    const std::string last =
        status.ok() ? absl::StrCat("GET ", release.health_path(), " answered ", *status)
                    : std::string(status.status().message());
    if (auto s = RollBack(release, last); !s.ok()) {
      // Asked again at the next tick; the other releases are watched on.
      if (first_error.ok()) first_error = s;
      continue;
    }
    rolled_back.push_back(release.id());
  }
  if (!first_error.ok()) return first_error;
  return rolled_back;
}

absl::Status ReleaseWatch::RollBack(const v1::Release& release, const std::string& last_failure) {
  const std::string failed =
      absl::StrCat("release ", release.version(), " failed ", options_.failures,
                   " health checks in a row within ", absl::FormatDuration(options_.window),
                   " of going live (last: ", last_failure, ")");
  auto target = PreviousRelease(*releases_, release.project_id());
  std::string not_rolled_back;
  if (!target.ok()) {
    if (target.status().code() != absl::StatusCode::kFailedPrecondition) return target.status();
    not_rolled_back = std::string(target.status().message());
  } else if (!target->failure_reason().empty() || target->image() == release.image()) {
    // Going back to what failed, or to the same image, would go round.
    not_rolled_back = absl::StrCat("release ", target->version(), " before it failed too");
  }
  if (!not_rolled_back.empty()) {
    return releases_->RecordUnhealthy(release.id(),
                                      absl::StrCat(failed, "; not rolled back: ", not_rolled_back));
  }
  const std::string reason = absl::StrCat(failed, "; rolled back to release ", target->version());
  // The job first: a reason recorded without it would stop the watch.
  if (auto s = start_rollback_(release, *target, reason); !s.ok()) return s;
  return releases_->RecordUnhealthy(release.id(), reason);
}

}  // namespace orchestrator::deploy
