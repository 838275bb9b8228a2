#pragma once

#include <memory>

#include "services/common/db/migrations.h"
#include "services/common/db/pool.h"
#include "services/jobs/store/pg_job_store.h"
#include "services/scheduler/domain/task_store.h"

namespace orchestrator::db {
// The scheduler schema (store/migrations), embedded at build time.
const MigrationSet& SchedulerMigrations();
}  // namespace orchestrator::db

namespace orchestrator::scheduler {

// TaskStore on PostgreSQL; runs' jobs go through the job engine's store in
// the same transaction. Times come from the caller's clock.
class PgTaskStore final : public TaskStore {
 public:
  PgTaskStore(db::PoolPtr pool, std::shared_ptr<jobs::PgJobStore> jobs)
      : pool_(std::move(pool)), jobs_(std::move(jobs)) {}

  absl::Status EnsureTasks(const std::vector<TaskRecord>& tasks) override;
  absl::StatusOr<bool> Lead(const std::string& holder, absl::Duration ttl) override;
  absl::Status Resign(const std::string& holder) override;
  absl::StatusOr<std::vector<TaskRecord>> ListTasks() override;
  absl::StatusOr<TaskRecord> GetTask(const std::string& task_id) override;
  absl::StatusOr<std::optional<RunRecord>> Tick(const std::string& holder,
                                                const std::string& task_id, absl::Time now,
                                                const TickDecider& decide) override;
  absl::StatusOr<RunRecord> RunNow(const std::string& task_id, const std::string& run_id,
                                   const std::string& requested_by, const jobs::EnqueueRequest& job,
                                   absl::Time now) override;
  absl::StatusOr<TaskRecord> Update(const std::string& task_id, const TaskChange& change,
                                    absl::Time now) override;
  absl::StatusOr<std::vector<RunRecord>> ListRuns(const std::string& task_id,
                                                  const PageRequest& page) override;
  absl::StatusOr<int64_t> PruneRuns(absl::Time cutoff) override;
  absl::StatusOr<std::vector<jobs::v1::Job>> JobsOf(
      const std::vector<std::string>& job_ids) override {
    return jobs_->GetMany(job_ids);
  }

 private:
  db::PoolPtr pool_;
  std::shared_ptr<jobs::PgJobStore> jobs_;
};

}  // namespace orchestrator::scheduler
