#pragma once

#include "services/common/db/migrations.h"
#include "services/common/db/pool.h"
#include "services/scaffolder/domain/scaffold_run.h"

namespace orchestrator::db {
// The scaffolder schema (store/migrations), embedded at build time.
const MigrationSet& ScaffolderMigrations();
}  // namespace orchestrator::db

namespace orchestrator::scaffolder {

// The repository ledger in PostgreSQL (scaffolder.repository_ledger).
class PgRepositoryLedger final : public RepositoryLedger {
 public:
  explicit PgRepositoryLedger(db::PoolPtr pool) : pool_(std::move(pool)) {}

  absl::StatusOr<std::optional<Entry>> Find(const std::string& job_id) override;
  absl::Status Intend(const Entry& entry) override;

 private:
  db::PoolPtr pool_;
};

}  // namespace orchestrator::scaffolder
