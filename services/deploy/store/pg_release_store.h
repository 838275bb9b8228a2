#pragma once

#include "services/common/db/migrations.h"
#include "services/common/db/pool.h"
#include "services/deploy/domain/release_store.h"

namespace orchestrator::db {
// The deploy schema (store/migrations), embedded at build time.
const MigrationSet& DeployMigrations();
}  // namespace orchestrator::db

namespace orchestrator::deploy {

// ReleaseStore on PostgreSQL (deploy.releases).
class PgReleaseStore final : public ReleaseStore {
 public:
  explicit PgReleaseStore(db::PoolPtr pool) : pool_(std::move(pool)) {}

  absl::StatusOr<std::string> InstallationId() override;
  absl::StatusOr<v1::Release> EnsureForJob(const v1::Release& release) override;
  absl::StatusOr<v1::Release> Get(const std::string& release_id) override;
  absl::StatusOr<std::optional<v1::Release>> Live(const std::string& project_id) override;
  absl::StatusOr<std::vector<v1::Release>> AllLive() override;
  absl::StatusOr<Page<v1::Release>> List(const std::string& project_id, v1::ReleaseStatus status,
                                         const PageRequest& page) override;
  absl::Status SetRuntime(const v1::Release& release) override;
  absl::StatusOr<int> RecordProbe(const std::string& release_id, bool passed) override;
  absl::Status RecordUnhealthy(const std::string& release_id, const std::string& reason) override;
  absl::StatusOr<std::optional<v1::Release>> MakeLive(const std::string& release_id,
                                                      const std::string& url,
                                                      absl::Time now) override;
  absl::Status MarkFailed(const std::string& release_id, const std::string& reason) override;
  absl::Status FailAbandoned(const std::string& project_id, const std::string& except,
                             const std::string& reason) override;

 private:
  db::PoolPtr pool_;
};

}  // namespace orchestrator::deploy
