#pragma once

#include <functional>

#include "absl/time/clock.h"
#include "services/common/auth/principal.h"
#include "services/jobs/domain/job_repository.h"

namespace orchestrator::jobs {

// The rules of JobService: an owner sees only their jobs (another owner's is
// NOT_FOUND), admins see all; fields are checked and named; events page in
// sequence order.
class JobBoard final {
 public:
  using Clock = std::function<absl::Time()>;
  explicit JobBoard(JobRepositoryPtr jobs, Clock clock = &absl::Now)
      : jobs_(std::move(jobs)), clock_(std::move(clock)) {}

  absl::StatusOr<v1::Job> Get(const Principal& caller, absl::string_view job_id);
  absl::StatusOr<v1::ListJobsResponse> List(const Principal& caller,
                                            const v1::ListJobsRequest& req);
  absl::StatusOr<v1::ListJobEventsResponse> ListEvents(const Principal& caller,
                                                       const v1::ListJobEventsRequest& req);
  absl::StatusOr<v1::Job> Cancel(const Principal& caller, const v1::CancelJobRequest& req);
  absl::StatusOr<v1::Job> Retry(const Principal& caller, const v1::RetryJobRequest& req);
  // The mesh only (the interceptor enforces it): see JobRepository::ClearProject.
  absl::StatusOr<v1::ClearProjectJobsResponse> ClearProject(const Principal& caller,
                                                            const v1::ClearProjectJobsRequest& req);

  // Events after `after_sequence` (at most `limit`), for watchers that
  // already checked access.
  absl::StatusOr<std::vector<v1::JobEvent>> EventsAfter(absl::string_view job_id,
                                                        int64_t after_sequence, int limit) {
    return jobs_->ListEvents(job_id, after_sequence, limit);
  }

 private:
  JobRepositoryPtr jobs_;
  Clock clock_;
};

}  // namespace orchestrator::jobs
