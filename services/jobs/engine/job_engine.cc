#include "services/jobs/engine/job_engine.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace orchestrator::jobs {

WorkerOptions JobEngine::OptionsOf(const MeshConfig& config, int concurrency) {
  WorkerOptions options;
  options.concurrency = concurrency;
  options.lease = absl::FromChrono(config.job_lease);
  options.heartbeat = options.lease / 3;
  // Orphaned jobs run again within the lease and a second.
  options.reap = std::min(options.lease / 4, absl::Seconds(1));
  options.limits.per_owner.assign(config.job_owner_limits.begin(), config.job_owner_limits.end());
  return options;
}

JobEngine::JobEngine(db::PoolPtr pool, const std::string& database_url, WorkerOptions options)
    : store_(std::make_shared<PgJobStore>(pool)),
      hub_(std::make_shared<JobEventHub>(database_url, pool)),
      worker_(std::make_shared<Worker>(store_, hub_.get(), std::move(options))) {}

JobEngine::~JobEngine() {
  BeginDrain(absl::Now());
  Stop();
}

absl::Status JobEngine::Start(absl::Duration timeout, const std::string& who) {
  hub_->Start();
  // Serving before the hub listens would let watchers miss events.
  if (!hub_->WaitUntilListening(timeout)) {
    hub_->Stop();
    return absl::UnavailableError(
        absl::StrCat(who, ": cannot LISTEN for job events on the database"));
  }
  worker_->Start();
  return absl::OkStatus();
}

void JobEngine::BeginDrain(absl::Time deadline) {
  if (draining_) return;
  draining_ = true;
  drain_ = std::thread([worker = worker_, deadline] { worker->Stop(deadline - absl::Now()); });
}

void JobEngine::Stop() {
  if (drain_.joinable()) drain_.join();
  hub_->Stop();
}

}  // namespace orchestrator::jobs
