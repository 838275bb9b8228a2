#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/jobs/domain/job_types.h"

namespace orchestrator::jobs {

// How an attempt ended, as the worker reports it.
struct AttemptOutcome {
  v1::JobState state;               // SUCCEEDED, FAILED, CANCELLED, or QUEUED for a retry
  google::protobuf::Struct result;  // SUCCEEDED only
  absl::Status error;               // FAILED / QUEUED / CANCELLED
  absl::Time retry_at;              // QUEUED only
};

// One successful attempt, for finishing many at once.
struct SuccessfulAttempt {
  std::string job_id;
  int32_t attempt;
  google::protobuf::Struct result;
};

// What the job engine's worker needs of the queue: leases it claims, renews
// and gives back, and the outcomes of attempts. Every call takes the time
// from the caller's clock. A worker that no longer holds a job's lease
// changes nothing of it.
class JobQueue {
 public:
  virtual ~JobQueue() = default;

  // Reserves up to `batch` ready jobs of `kinds` for `worker_id` until
  // now + lease, in queue order; QUEUED, charged nothing, until Start.
  virtual absl::StatusOr<std::vector<v1::Job>> Claim(const std::string& worker_id,
                                                     const std::vector<std::string>& kinds,
                                                     const ClaimLimits& limits, int batch,
                                                     absl::Duration lease, absl::Time now) = 0;
  // RUNNING, attempt + 1: the reserved jobs whose handlers run now; returns
  // those started (the others are no longer the worker's).
  virtual absl::StatusOr<std::vector<v1::Job>> Start(const std::string& worker_id,
                                                     const std::vector<std::string>& job_ids,
                                                     absl::Duration lease, absl::Time now) = 0;
  // Gives reservations back: claimable at once, in place.
  virtual absl::Status Unreserve(const std::string& worker_id,
                                 const std::vector<std::string>& job_ids) = 0;
  // Extends the leases the worker still holds: id → cancel requested.
  virtual absl::StatusOr<absl::flat_hash_map<std::string, bool>> Heartbeat(
      const std::string& worker_id, const std::vector<std::string>& job_ids, absl::Duration lease,
      absl::Time now) = 0;
  // Progress or a log line from the worker holding the lease.
  virtual absl::Status AppendEvent(const std::string& worker_id, const std::string& job_id,
                                   const v1::JobEvent& event, absl::Time now) = 0;
  // Ends an attempt; false when the worker no longer held the lease.
  virtual absl::StatusOr<bool> Finish(const std::string& worker_id, const v1::Job& job,
                                      const AttemptOutcome& outcome, absl::Time now) = 0;
  // Many successful attempts at once; returns the ids whose lease it held.
  virtual absl::StatusOr<std::vector<std::string>> FinishSucceeded(
      const std::string& worker_id, const std::vector<SuccessfulAttempt>& attempts,
      absl::Time now) = 0;
  // Gives a started job back: QUEUED, runnable at once.
  virtual absl::Status Release(const std::string& worker_id, const v1::Job& job,
                               absl::Time now) = 0;
  // Re-queues (or fails) started jobs whose lease expired; returns how many.
  virtual absl::StatusOr<int> ReapExpiredLeases(absl::Time now) = 0;
};

using JobQueuePtr = std::shared_ptr<JobQueue>;

}  // namespace orchestrator::jobs
