#pragma once

#include "services/common/db/migrations.h"
#include "services/common/db/pool.h"
#include "services/engineering/domain/ports.h"

namespace orchestrator::db {
// The engineering schema (store/migrations), embedded at build time.
const MigrationSet& EngineeringMigrations();
}  // namespace orchestrator::db

namespace orchestrator::engineering {

// RunStore on PostgreSQL (engineering.runs, engineering.usage).
class PgRunStore final : public RunStore {
 public:
  explicit PgRunStore(db::PoolPtr pool) : pool_(std::move(pool)) {}

  absl::StatusOr<v1::EngineeringRun> EnsureForJob(const v1::EngineeringRun& run) override;
  absl::StatusOr<StoredRun> Get(const std::string& run_id) override;
  absl::StatusOr<StoredRun> GetByJob(const std::string& job_id) override;
  absl::Status Save(const StoredRun& run) override;
  absl::StatusOr<Page<v1::EngineeringRun>> List(const std::string& project_id,
                                                v1::EngineeringRunStatus status,
                                                const PageRequest& page) override;
  absl::StatusOr<std::optional<v1::EngineeringRun>> LatestSucceeded(
      const std::string& project_id) override;
  absl::Status RecordUsage(const v1::EngineeringRun& run, const std::string& task_id,
                           const agents::v1::Usage& usage, absl::Time now) override;
  absl::StatusOr<UsageTotals> SumUsage(const UsageScope& scope) override;

 private:
  db::PoolPtr pool_;
};

}  // namespace orchestrator::engineering
