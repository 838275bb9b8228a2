#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/pagination/page_token.h"
#include "services/jobs/domain/job_types.h"

namespace orchestrator::jobs {

struct JobFilter {
  std::string owner_id;  // "" = every owner
  std::string project_id;
  std::string kind;
  v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
};

// What clearing a project's jobs did.
struct ProjectJobsCleared {
  int cancelled = 0;  // queued jobs cancelled, running ones asked to stop
  std::vector<std::string> deleted_job_ids;
  int64_t events_deleted = 0;
  std::vector<std::string> running_job_ids;  // asked to stop, still running: kept
  std::vector<std::string> ended_job_ids;    // listed (at most 1000), not deleted
};

struct JobPage {
  std::vector<v1::Job> jobs;
  std::vector<std::string> last_keys;  // empty when there is no next page
};

// What JobService reads and changes. NOT_FOUND for unknown jobs;
// FAILED_PRECONDITION for a cancel or retry the job's state does not allow.
class JobRepository {
 public:
  virtual ~JobRepository() = default;
  virtual absl::StatusOr<v1::Job> Get(absl::string_view job_id) = 0;
  virtual absl::StatusOr<JobPage> List(const JobFilter& filter, const PageRequest& page) = 0;
  virtual absl::StatusOr<std::vector<v1::JobEvent>> ListEvents(absl::string_view job_id,
                                                               int64_t after_sequence,
                                                               int limit) = 0;
  virtual absl::StatusOr<v1::Job> Cancel(absl::string_view job_id, absl::string_view requester,
                                         absl::string_view reason, absl::Time now) = 0;
  virtual absl::StatusOr<v1::Job> Retry(absl::string_view job_id, absl::Time now) = 0;
  // With no `delete_ids`: cancels the project's queued jobs, asks its
  // running ones to stop, and lists those that have ended (at most 1000).
  // With them: deletes those of them that are the project's and have
  // ended, with their events; a running job is never deleted under its
  // handler.
  virtual absl::StatusOr<ProjectJobsCleared> ClearProject(
      absl::string_view project_id, absl::string_view reason,
      const std::vector<std::string>& delete_ids, absl::Time now) = 0;
};

using JobRepositoryPtr = std::shared_ptr<JobRepository>;

}  // namespace orchestrator::jobs
