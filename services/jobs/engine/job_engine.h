#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "services/common/config/mesh_config.h"
#include "services/common/db/pool.h"
#include "services/jobs/engine/worker.h"
#include "services/jobs/store/job_event_hub.h"
#include "services/jobs/store/pg_job_store.h"

namespace orchestrator::jobs {

// The job engine as a component hosts it: the queue in PostgreSQL, one
// LISTEN connection fanning its events out, and a worker running the kinds
// registered with it. The jobs component hosts one (with JobService); a
// component running jobs of its own kinds (scaffold, deploy, ...) hosts its
// own, on the same tables.
class JobEngine final {
 public:
  // The worker's options from the mesh's config (--job_lease,
  // --job_owner_limits), running at most `concurrency` handlers.
  static WorkerOptions OptionsOf(const MeshConfig& config, int concurrency);

  JobEngine(db::PoolPtr pool, const std::string& database_url, WorkerOptions options);
  ~JobEngine();  // drains at once, then stops
  JobEngine(const JobEngine&) = delete;
  JobEngine& operator=(const JobEngine&) = delete;

  const std::shared_ptr<PgJobStore>& store() const { return store_; }
  JobEventHub& hub() { return *hub_; }
  // Registers handlers here, before Start.
  Worker& worker() { return *worker_; }

  // Listens for the queue's events (UNAVAILABLE, naming `who`, when it
  // cannot within `timeout`), then starts the worker.
  absl::Status Start(absl::Duration timeout, const std::string& who);
  // Stops claiming and drains the running jobs until `deadline`, without
  // blocking (alongside the gRPC drain: watchers need the hub until both
  // are over).
  void BeginDrain(absl::Time deadline);
  // Waits for the drain, then stops listening.
  void Stop();

 private:
  std::shared_ptr<PgJobStore> store_;
  std::shared_ptr<JobEventHub> hub_;
  std::shared_ptr<Worker> worker_;
  std::thread drain_;
  bool draining_ = false;
};

}  // namespace orchestrator::jobs
