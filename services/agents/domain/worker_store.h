#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "orchestrator/agents/v1/agents.pb.h"

namespace orchestrator::agents {

// Where workers and tasks are kept. Every method is one transaction.
class WorkerStore {
 public:
  virtual ~WorkerStore() = default;

  // Inserts `worker`; with a request_id already used by the owner, returns
  // the worker that request created instead (and `*created` is false).
  virtual absl::StatusOr<v1::Worker> CreateWorker(const v1::Worker& worker,
                                                  const std::string& request_id,
                                                  const std::string& token_id, bool* created) = 0;
  virtual absl::StatusOr<v1::Worker> GetWorker(const std::string& id) = 0;
  virtual absl::Status SaveWorker(const v1::Worker& worker) = 0;
  virtual absl::StatusOr<std::string> TokenOf(const std::string& worker_id) = 0;
  // Newest first; owner "" = everyone's; state/type UNSPECIFIED = any.
  // `after` is the (create_time, id) cursor of the previous page.
  virtual absl::StatusOr<std::vector<v1::Worker>> ListWorkers(
      const std::string& owner_id, v1::WorkerState state, v1::WorkerType type, int limit,
      const std::optional<std::pair<int64_t, std::string>>& after) = 0;
  // STARTING, READY, BUSY or PAUSED workers: what a restart finds orphaned.
  virtual absl::StatusOr<std::vector<v1::Worker>> ListLiveWorkers() = 0;

  // Inserts `task`; a request_id already used on the worker returns that
  // task instead.
  virtual absl::StatusOr<v1::Task> CreateTask(const v1::Task& task, const std::string& request_id,
                                              bool* created) = 0;
  virtual absl::Status SaveResult(const v1::TaskResult& result) = 0;
  // The result of a task that ended, if it did.
  virtual absl::StatusOr<std::optional<v1::TaskResult>> ResultOf(const std::string& task_id) = 0;
  virtual absl::Status SaveFinish(const std::string& task_id,
                                  const v1::FinishTaskRequest& finish) = 0;
  virtual absl::StatusOr<std::optional<v1::FinishTaskRequest>> FinishOf(
      const std::string& task_id) = 0;
  // Tasks with no result yet on `worker_id`.
  virtual absl::StatusOr<std::vector<v1::Task>> RunningTasks(const std::string& worker_id) = 0;
};

}  // namespace orchestrator::agents
