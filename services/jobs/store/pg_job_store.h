#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/db/migrations.h"
#include "services/common/db/pool.h"
#include "services/common/pagination/page_token.h"
#include "services/jobs/domain/job_queue.h"
#include "services/jobs/domain/job_repository.h"
#include "services/jobs/domain/job_types.h"

namespace orchestrator::db {
// The jobs schema (store/migrations), embedded at build time.
const MigrationSet& JobsMigrations();
}  // namespace orchestrator::db

namespace orchestrator::jobs {

// Channels the engine notifies on (committed with the change they announce).
inline constexpr absl::string_view kEventsChannel = "orchestrator_job_events";
inline constexpr absl::string_view kReadyChannel = "orchestrator_jobs_ready";

// An event read back from its stored columns.
v1::JobEvent EventFromColumns(absl::string_view job_id, int64_t sequence, int type,
                              int64_t create_micros, absl::string_view body);

// Every SQL statement of the job engine. Times come from the caller's clock
// (never the server's now()), so tests can drive leases and backoff.
// Each change appends its events and notifies kEventsChannel in the same
// transaction.
class PgJobStore final : public JobRepository, public JobQueue {
 public:
  explicit PgJobStore(db::PoolPtr pool) : pool_(std::move(pool)) {}

  // Within the caller's transaction: the job commits with the domain write.
  absl::StatusOr<v1::Job> Enqueue(db::Transaction& tx, const EnqueueRequest& req, absl::Time now);
  absl::StatusOr<v1::Job> Enqueue(const EnqueueRequest& req, absl::Time now);
  // The job `owner_id` enqueued with `request_id`, if any.
  absl::StatusOr<std::optional<v1::Job>> FindByRequest(const std::string& owner_id,
                                                       const std::string& request_id);

  absl::StatusOr<v1::Job> Get(absl::string_view job_id) override;
  // Within the caller's transaction; nullopt for an unknown (or pruned) job.
  absl::StatusOr<std::optional<v1::Job>> Find(db::Transaction& tx, const std::string& job_id);
  // The jobs of `job_ids` that exist, in no particular order.
  absl::StatusOr<std::vector<v1::Job>> GetMany(const std::vector<std::string>& job_ids);
  // An owner's newest `limit` jobs of one project, newest first.
  absl::StatusOr<std::vector<v1::Job>> ListProjectJobs(const std::string& owner_id,
                                                       const std::string& project_id, int limit);
  absl::StatusOr<JobPage> List(const JobFilter& filter, const PageRequest& page) override;
  absl::StatusOr<std::vector<v1::JobEvent>> ListEvents(absl::string_view job_id,
                                                       int64_t after_sequence, int limit) override;

  // Reserves up to `batch` ready jobs of `kinds` for `worker_id` until
  // now + lease, in queue order. They stay QUEUED, charged nothing, until
  // Start; a reservation nobody renews lapses and the job is claimable again
  // in its place. `limits` apply to their kinds (reserved jobs count as
  // running); jobs with a concurrency key or a limited kind are claimed
  // under one advisory lock so limits hold across processes.
  absl::StatusOr<std::vector<v1::Job>> Claim(const std::string& worker_id,
                                             const std::vector<std::string>& kinds,
                                             const ClaimLimits& limits, int batch,
                                             absl::Duration lease, absl::Time now) override;

  // Starts reserved jobs whose handlers run now: RUNNING, attempt + 1, lease
  // until now + lease. Returns those started; the others are no longer
  // reserved by `worker_id` (cancelled, or lapsed and claimed elsewhere).
  absl::StatusOr<std::vector<v1::Job>> Start(const std::string& worker_id,
                                             const std::vector<std::string>& job_ids,
                                             absl::Duration lease, absl::Time now) override;

  // Gives reservations back (graceful shutdown): claimable at once, in place.
  absl::Status Unreserve(const std::string& worker_id,
                         const std::vector<std::string>& job_ids) override;

  // Extends the leases (running or reserved jobs) `worker_id` still holds. Returns id → cancel
  // requested, for the jobs whose lease it still holds; the others were lost.
  absl::StatusOr<absl::flat_hash_map<std::string, bool>> Heartbeat(
      const std::string& worker_id, const std::vector<std::string>& job_ids, absl::Duration lease,
      absl::Time now) override;

  // Progress or a log line from the worker holding the lease.
  absl::Status AppendEvent(const std::string& worker_id, const std::string& job_id,
                           const v1::JobEvent& event, absl::Time now) override;

  // Ends an attempt; false when the worker no longer held the lease (the job
  // was reaped and belongs to someone else now), so nothing changed.
  absl::StatusOr<bool> Finish(const std::string& worker_id, const v1::Job& job,
                              const AttemptOutcome& outcome, absl::Time now) override;

  // Many successful attempts in one statement; returns the ids whose lease
  // the worker still held (the others were finished by nobody).
  absl::StatusOr<std::vector<std::string>> FinishSucceeded(
      const std::string& worker_id, const std::vector<SuccessfulAttempt>& attempts,
      absl::Time now) override;

  // Gives a started job back (graceful shutdown): QUEUED, runnable at once.
  absl::Status Release(const std::string& worker_id, const v1::Job& job, absl::Time now) override;

  // Re-queues (or fails, past max_attempts) started jobs whose lease
  // expired, and clears lapsed reservations; returns the jobs re-queued.
  absl::StatusOr<int> ReapExpiredLeases(absl::Time now) override;

  // QUEUED → CANCELLED at once, dropping any reservation on it; RUNNING →
  // cancel requested (the handler sees it at its next heartbeat).
  // FAILED_PRECONDITION once the job has ended.
  absl::StatusOr<v1::Job> Cancel(absl::string_view job_id, absl::string_view requester,
                                 absl::string_view reason, absl::Time now) override;
  // FAILED or CANCELLED → QUEUED with a fresh attempt count, reserved by
  // nobody (claimable at once).
  absl::StatusOr<v1::Job> Retry(absl::string_view job_id, absl::Time now) override;

  absl::StatusOr<ProjectJobsCleared> ClearProject(absl::string_view project_id,
                                                  absl::string_view reason,
                                                  const std::vector<std::string>& delete_ids,
                                                  absl::Time now) override;

  // Deletes jobs (and their events) that ended before `cutoff`.
  absl::StatusOr<int64_t> PruneFinished(absl::Time cutoff);

 private:
  db::PoolPtr pool_;
};

}  // namespace orchestrator::jobs
