#pragma once

#include "absl/strings/string_view.h"
#include "services/common/db/migrations.h"
#include "services/common/db/pool.h"
#include "services/projects/domain/project_store.h"

namespace orchestrator::db {
// The projects schema (store/migrations), embedded at build time.
const MigrationSet& ProjectsMigrations();
}  // namespace orchestrator::db

namespace orchestrator::projects {

// ProjectStore on PostgreSQL (schema "projects").
class PgProjectStore final : public ProjectStore {
 public:
  explicit PgProjectStore(db::PoolPtr pool) : pool_(std::move(pool)) {}

  absl::StatusOr<v1::Project> Insert(const v1::Project& project,
                                     absl::string_view request_id) override;
  absl::StatusOr<v1::Project> Get(absl::string_view project_id) override;
  absl::StatusOr<Page<v1::Project>> List(const ProjectFilter& filter,
                                         const PageRequest& page) override;
  absl::StatusOr<v1::Project> Update(const v1::Project& project,
                                     const std::vector<std::string>& fields) override;
  absl::Status Delete(absl::string_view project_id) override;
  absl::StatusOr<v1::Secret> PutSecret(absl::string_view project_id, absl::string_view name,
                                       absl::string_view sealed_value) override;
  absl::StatusOr<Page<v1::Secret>> ListSecrets(absl::string_view project_id,
                                               const PageRequest& page) override;
  absl::StatusOr<std::string> GetSealedSecret(absl::string_view project_id,
                                              absl::string_view name) override;
  absl::Status DeleteSecret(absl::string_view project_id, absl::string_view name) override;

 private:
  db::PoolPtr pool_;
};

}  // namespace orchestrator::projects
