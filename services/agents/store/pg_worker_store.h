#pragma once

#include "services/agents/domain/worker_store.h"
#include "services/common/db/migrations.h"
#include "services/common/db/pool.h"

namespace orchestrator::db {
// The agents schema's migrations (store/migrations), embedded at build time.
const MigrationSet& AgentsMigrations();
}  // namespace orchestrator::db

namespace orchestrator::agents {

// WorkerStore on PostgreSQL (schema `agents`): each message kept as its
// protobuf JSON, with the columns queries need beside it.
class PgWorkerStore final : public WorkerStore {
 public:
  explicit PgWorkerStore(db::PoolPtr pool) : pool_(std::move(pool)) {}

  absl::StatusOr<v1::Worker> CreateWorker(const v1::Worker& worker, const std::string& request_id,
                                          const std::string& token_id, bool* created) override;
  absl::StatusOr<v1::Worker> GetWorker(const std::string& id) override;
  absl::Status SaveWorker(const v1::Worker& worker) override;
  absl::StatusOr<std::string> TokenOf(const std::string& worker_id) override;
  absl::StatusOr<std::vector<v1::Worker>> ListWorkers(
      const std::string& owner_id, v1::WorkerState state, v1::WorkerType type, int limit,
      const std::optional<std::pair<int64_t, std::string>>& after) override;
  absl::StatusOr<std::vector<v1::Worker>> ListLiveWorkers() override;
  absl::StatusOr<v1::Task> CreateTask(const v1::Task& task, const std::string& request_id,
                                      bool* created) override;
  absl::Status SaveResult(const v1::TaskResult& result) override;
  absl::StatusOr<std::optional<v1::TaskResult>> ResultOf(const std::string& task_id) override;
  absl::Status SaveFinish(const std::string& task_id, const v1::FinishTaskRequest& finish) override;
  absl::StatusOr<std::optional<v1::FinishTaskRequest>> FinishOf(
      const std::string& task_id) override;
  absl::StatusOr<std::vector<v1::Task>> RunningTasks(const std::string& worker_id) override;

 private:
  db::PoolPtr pool_;
};

}  // namespace orchestrator::agents
