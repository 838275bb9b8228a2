#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "orchestrator/deploy/v1/deploy.pb.h"
#include "services/deploy/domain/deploy_ports.h"
#include "services/deploy/domain/release_store.h"

namespace orchestrator::deploy {

struct ReleaseWatchOptions {
  // How long after going LIVE a release is watched.
  absl::Duration window = absl::Seconds(60);
  // Failed probes in a row that roll it back.
  int failures = 3;
  // One probe's deadline.
  absl::Duration probe_timeout = absl::Seconds(2);
};

// What the watch asks of whoever starts jobs: a rollback job, as the
// failing release's owner, making `target` LIVE again while `failing` still
// is, with `reason` for the owner's notification. Idempotent per failing
// release (another replica, or a watch after a restart, asks again).
using StartRollback = std::function<absl::Status(
    const v1::Release& failing, const v1::Release& target, const std::string& reason)>;

// After a switch, a release is watched for a window: its health path is
// probed each Tick, and after `failures` failed probes in a row the platform
// rolls it back to the release it replaced and records why on it. The
// window is reckoned from the release's live_time, so a watch that starts
// again after a restart covers what is left of it. Each Tick is one run of
// the scheduler's deploy.releases.watch task (runs never overlap); the
// failures in a row are counted in the release store, so the next Tick
// may run on another replica.
class ReleaseWatch {
 public:
  ReleaseWatch(ReleaseStorePtr releases, std::shared_ptr<ServerTargets> servers,
               StartRollback start_rollback, ReleaseWatchOptions options,
               std::function<absl::Time()> clock = nullptr)
      : releases_(std::move(releases)),
        servers_(std::move(servers)),
        start_rollback_(std::move(start_rollback)),
        options_(options),
        clock_(clock ? std::move(clock) : [] { return absl::Now(); }) {}

  // One probe of every LIVE release inside its window; the ids of the
  // releases whose rollback was started, or the first error (the other
  // releases were probed all the same).
  absl::StatusOr<std::vector<std::string>> Tick();

 private:
  // `release` failed its probes: roll it back when it has a healthy
  // release to go back to.
  absl::Status RollBack(const v1::Release& release, const std::string& last_failure);

  ReleaseStorePtr releases_;
  std::shared_ptr<ServerTargets> servers_;  // each release probed on its server
  StartRollback start_rollback_;
  ReleaseWatchOptions options_;
  std::function<absl::Time()> clock_;
};

}  // namespace orchestrator::deploy
