#include "services/agents/store/pg_worker_store.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "services/common/db/proto_json.h"

namespace orchestrator::agents {
namespace {

using google::protobuf::util::TimeUtil;

using db::FromJsonColumn;
using db::FromJsonRows;
using db::ToJsonColumn;

constexpr db::Statement kInsertWorker{
    "agents_worker_insert",
    "INSERT INTO agents.workers (id, owner_id, state, create_request_id, token_id, worker, "
    "create_time) VALUES ($1, $2, $3::int, $4, $5, $6::jsonb, to_timestamp($7::bigint / 1e6)) "
    "ON CONFLICT (owner_id, create_request_id) WHERE create_request_id IS NOT NULL DO NOTHING "
    "RETURNING worker"};
constexpr db::Statement kWorkerByRequest{
    "agents_worker_by_request",
    "SELECT worker FROM agents.workers WHERE owner_id = $1 AND create_request_id = $2"};
constexpr db::Statement kGetWorker{"agents_worker_get",
                                   "SELECT worker FROM agents.workers WHERE id = $1"};
constexpr db::Statement kSaveWorker{
    "agents_worker_save",
    "UPDATE agents.workers SET worker = $2::jsonb, state = $3::int WHERE id = $1"};
constexpr db::Statement kTokenOf{"agents_worker_token",
                                 "SELECT token_id FROM agents.workers WHERE id = $1"};
// Newest first; $1 owner ('' = all), $2 state (0 = any), $3 worker type name
// ('' = any), $4/$5 the previous page's last (create micros, id).
constexpr db::Statement kListWorkers{
    "agents_worker_list",
    "SELECT worker, (extract(epoch FROM create_time) * 1000000)::bigint FROM agents.workers "
    "WHERE ($1 = '' OR owner_id = $1) AND ($2::int = 0 OR state = $2::int) "
    "AND ($3 = '' OR worker #>> '{config,workerType}' = $3) "
    "AND ($4::bigint IS NULL OR ((extract(epoch FROM create_time) * 1000000)::bigint, id) < "
    "($4::bigint, $5::text)) ORDER BY create_time DESC, id DESC LIMIT $6"};
constexpr db::Statement kLiveWorkers{
    "agents_worker_live", "SELECT worker FROM agents.workers WHERE state IN (1, 2, 3, 4)"};
constexpr db::Statement kInsertTask{
    "agents_task_insert",
    "INSERT INTO agents.tasks (id, worker_id, create_request_id, task) VALUES ($1, $2, $3, "
    "$4::jsonb) ON CONFLICT (worker_id, create_request_id) WHERE create_request_id IS NOT NULL "
    "DO NOTHING RETURNING task"};
constexpr db::Statement kTaskByRequest{
    "agents_task_by_request",
    "SELECT task FROM agents.tasks WHERE worker_id = $1 AND create_request_id = $2"};
constexpr db::Statement kSaveResult{"agents_task_result",
                                    "UPDATE agents.tasks SET result = $2::jsonb WHERE id = $1"};
constexpr db::Statement kResultOf{"agents_task_get_result",
                                  "SELECT result FROM agents.tasks WHERE id = $1"};
constexpr db::Statement kSaveFinish{"agents_task_finish",
                                    "UPDATE agents.tasks SET finish = $2::jsonb WHERE id = $1"};
constexpr db::Statement kFinishOf{"agents_task_get_finish",
                                  "SELECT finish FROM agents.tasks WHERE id = $1"};
constexpr db::Statement kRunningTasks{
    "agents_task_running", "SELECT task FROM agents.tasks WHERE worker_id = $1 AND result IS NULL"};

absl::Status NoWorker(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("worker '", id, "' not found"));
}

}  // namespace

absl::StatusOr<v1::Worker> PgWorkerStore::CreateWorker(const v1::Worker& w,
                                                       const std::string& request_id,
                                                       const std::string& token_id, bool* created) {
  auto r = pool_->Exec(
      kInsertWorker,
      {w.id(), w.owner_id(), std::to_string(w.state()), db::NullIfEmpty(request_id), token_id,
       ToJsonColumn(w), std::to_string(TimeUtil::TimestampToMicroseconds(w.create_time()))});
  if (!r.ok()) return r.status();
  *created = r->rows() == 1;
  if (*created) return FromJsonColumn<v1::Worker>(r->Get(0, 0));
  auto earlier = pool_->Exec(kWorkerByRequest, {w.owner_id(), request_id});
  if (!earlier.ok()) return earlier.status();
  if (earlier->rows() != 1) return absl::AbortedError("concurrent start with the same request_id");
  return FromJsonColumn<v1::Worker>(earlier->Get(0, 0));
}

absl::StatusOr<v1::Worker> PgWorkerStore::GetWorker(const std::string& id) {
  auto r = pool_->Exec(kGetWorker, {id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return NoWorker(id);
  return FromJsonColumn<v1::Worker>(r->Get(0, 0));
}

absl::Status PgWorkerStore::SaveWorker(const v1::Worker& w) {
  auto r = pool_->Exec(kSaveWorker, {w.id(), ToJsonColumn(w), std::to_string(w.state())});
  if (!r.ok()) return r.status();
  return r->affected() == 1 ? absl::OkStatus() : NoWorker(w.id());
}

absl::StatusOr<std::string> PgWorkerStore::TokenOf(const std::string& worker_id) {
  auto r = pool_->Exec(kTokenOf, {worker_id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return NoWorker(worker_id);
  return std::string(r->Get(0, 0));
}

absl::StatusOr<std::vector<v1::Worker>> PgWorkerStore::ListWorkers(
    const std::string& owner_id, v1::WorkerState state, v1::WorkerType type, int limit,
    const std::optional<std::pair<int64_t, std::string>>& after) {
  const std::string type_name =
      type == v1::WORKER_TYPE_UNSPECIFIED ? "" : v1::WorkerType_Name(type);
  auto r = pool_->Exec(
      kListWorkers,
      {owner_id, std::to_string(state), type_name,
       after ? std::optional<std::string>(std::to_string(after->first)) : std::nullopt,
       after ? std::optional<std::string>(after->second) : std::nullopt, std::to_string(limit)});
  if (!r.ok()) return r.status();
  return FromJsonRows<v1::Worker>(*r);
}

absl::StatusOr<std::vector<v1::Worker>> PgWorkerStore::ListLiveWorkers() {
  auto r = pool_->Exec(kLiveWorkers, {});
  if (!r.ok()) return r.status();
  return FromJsonRows<v1::Worker>(*r);
}

absl::StatusOr<v1::Task> PgWorkerStore::CreateTask(const v1::Task& task,
                                                   const std::string& request_id, bool* created) {
  auto r = pool_->Exec(
      kInsertTask, {task.id(), task.worker_id(), db::NullIfEmpty(request_id), ToJsonColumn(task)});
  if (!r.ok()) {
    if (absl::IsFailedPrecondition(r.status())) return NoWorker(task.worker_id());
    return r.status();
  }
  *created = r->rows() == 1;
  if (*created) return FromJsonColumn<v1::Task>(r->Get(0, 0));
  auto earlier = pool_->Exec(kTaskByRequest, {task.worker_id(), request_id});
  if (!earlier.ok()) return earlier.status();
  if (earlier->rows() != 1) return absl::AbortedError("concurrent task with the same request_id");
  return FromJsonColumn<v1::Task>(earlier->Get(0, 0));
}

absl::Status PgWorkerStore::SaveResult(const v1::TaskResult& result) {
  auto r = pool_->Exec(kSaveResult, {result.task_id(), ToJsonColumn(result)});
  return r.ok() ? absl::OkStatus() : r.status();
}

absl::StatusOr<std::optional<v1::TaskResult>> PgWorkerStore::ResultOf(const std::string& task_id) {
  auto r = pool_->Exec(kResultOf, {task_id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return absl::NotFoundError(absl::StrCat("task '", task_id, "' not found"));
  if (r->IsNull(0, 0)) return std::optional<v1::TaskResult>();
  auto result = FromJsonColumn<v1::TaskResult>(r->Get(0, 0));
  if (!result.ok()) return result.status();
  return std::optional<v1::TaskResult>(std::move(*result));
}

absl::Status PgWorkerStore::SaveFinish(const std::string& task_id,
                                       const v1::FinishTaskRequest& finish) {
  auto r = pool_->Exec(kSaveFinish, {task_id, ToJsonColumn(finish)});
  if (!r.ok()) return r.status();
  return r->affected() == 1 ? absl::OkStatus()
                            : absl::NotFoundError(absl::StrCat("task '", task_id, "' not found"));
}

absl::StatusOr<std::optional<v1::FinishTaskRequest>> PgWorkerStore::FinishOf(
    const std::string& task_id) {
  auto r = pool_->Exec(kFinishOf, {task_id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0 || r->IsNull(0, 0)) return std::optional<v1::FinishTaskRequest>();
  auto f = FromJsonColumn<v1::FinishTaskRequest>(r->Get(0, 0));
  if (!f.ok()) return f.status();
  return std::optional<v1::FinishTaskRequest>(std::move(*f));
}

absl::StatusOr<std::vector<v1::Task>> PgWorkerStore::RunningTasks(const std::string& worker_id) {
  auto r = pool_->Exec(kRunningTasks, {worker_id});
  if (!r.ok()) return r.status();
  return FromJsonRows<v1::Task>(*r);
}

}  // namespace orchestrator::agents
