#include "services/engineering/store/pg_run_store.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "services/common/db/proto_json.h"

namespace orchestrator::engineering {
namespace {

using google::protobuf::util::TimeUtil;

#define RUN_COLUMNS                                                  \
  "run, workspace_id, default_branch, base_commit_sha, commit_sha, " \
  "(extract(epoch FROM commit_time) * 1000000)::bigint, "            \
  "(extract(epoch FROM create_time) * 1000000)::bigint, id"

constexpr db::Statement kInsert{
    "engineering_run_insert",
    "INSERT INTO engineering.runs (id, owner_id, project_id, job_id, status, run, create_time) "
    "VALUES ($1, $2, $3, $4, $5::int, $6::jsonb, to_timestamp($7::bigint / 1e6)) "
    // No arbiter: the request and the job's handler may insert the same run
    // at once, which collides on the id as well as the job.
    "ON CONFLICT DO NOTHING"};
constexpr db::Statement kGet{"engineering_run_get",
                             "SELECT " RUN_COLUMNS " FROM engineering.runs WHERE id = $1"};
constexpr db::Statement kByJob{"engineering_run_by_job",
                               "SELECT " RUN_COLUMNS " FROM engineering.runs WHERE job_id = $1"};
constexpr db::Statement kSave{
    "engineering_run_save",
    "UPDATE engineering.runs SET status = $2::int, run = $3::jsonb, workspace_id = $4, "
    "default_branch = $5, base_commit_sha = $6, commit_sha = $7, "
    "commit_time = to_timestamp($8::bigint / 1e6), "
    "end_time = to_timestamp($9::bigint / 1e6) WHERE id = $1"};
constexpr db::Statement kList{
    "engineering_run_list",
    "SELECT " RUN_COLUMNS
    " FROM engineering.runs WHERE project_id = $1 "
    "AND ($2::int = 0 OR status = $2::int) "
    "AND ($3::bigint IS NULL OR (create_time, id) < (to_timestamp($3::bigint / 1e6), $4)) "
    "ORDER BY create_time DESC, id DESC LIMIT $5"};
constexpr db::Statement kLatestSucceeded{
    "engineering_run_latest_succeeded",
    "SELECT " RUN_COLUMNS
    " FROM engineering.runs WHERE project_id = $1 AND status = 4 "
    "ORDER BY end_time DESC LIMIT 1"};
constexpr db::Statement kRecordUsage{
    "engineering_usage_record",
    "INSERT INTO engineering.usage AS u (task_id, run_id, owner_id, project_id, input_tokens, "
    "output_tokens, cache_read_tokens, cache_write_tokens, cost_usd_micros, turns, update_time) "
    "VALUES ($1, $2, $3, $4, $5::bigint, $6::bigint, $7::bigint, $8::bigint, $9::bigint, "
    "$10::int, to_timestamp($11::bigint / 1e6)) ON CONFLICT (task_id) DO UPDATE SET "
    "input_tokens = GREATEST(u.input_tokens, EXCLUDED.input_tokens), "
    "output_tokens = GREATEST(u.output_tokens, EXCLUDED.output_tokens), "
    "cache_read_tokens = GREATEST(u.cache_read_tokens, EXCLUDED.cache_read_tokens), "
    "cache_write_tokens = GREATEST(u.cache_write_tokens, EXCLUDED.cache_write_tokens), "
    "cost_usd_micros = GREATEST(u.cost_usd_micros, EXCLUDED.cost_usd_micros), "
    "turns = GREATEST(u.turns, EXCLUDED.turns), "
    "update_time = GREATEST(u.update_time, EXCLUDED.update_time)"};
constexpr db::Statement kSumUsage{
    "engineering_usage_sum",
    "SELECT COALESCE(sum(input_tokens), 0)::bigint, COALESCE(sum(output_tokens), 0)::bigint, "
    "COALESCE(sum(cache_read_tokens), 0)::bigint, COALESCE(sum(cache_write_tokens), 0)::bigint, "
    "COALESCE(sum(cost_usd_micros), 0)::bigint, COALESCE(sum(turns), 0)::bigint, "
    "count(DISTINCT run_id)::bigint FROM engineering.usage "
    "WHERE ($1 = '' OR run_id = $1) AND ($2 = '' OR project_id = $2) "
    "AND ($3 = '' OR owner_id = $3) "
    "AND ($4::bigint IS NULL OR update_time >= to_timestamp($4::bigint / 1e6))"};

std::optional<std::string> MicrosOrNull(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return std::nullopt;
  return std::to_string(absl::ToUnixMicros(t));
}

absl::StatusOr<StoredRun> StoredFromRow(const db::Result& r, int row) {
  auto run = db::FromJsonColumn<v1::EngineeringRun>(r.Get(row, 0));
  if (!run.ok()) return run.status();
  StoredRun out;
  out.run = *std::move(run);
  out.progress.workspace_id = std::string(r.Get(row, 1));
  out.progress.default_branch = std::string(r.Get(row, 2));
  out.progress.base_commit_sha = std::string(r.Get(row, 3));
  out.progress.commit_sha = std::string(r.Get(row, 4));
  if (!r.IsNull(row, 5)) out.progress.commit_time = absl::FromUnixMicros(r.GetInt64(row, 5));
  return out;
}

absl::StatusOr<StoredRun> OneRun(const absl::StatusOr<db::Result>& r, const std::string& what) {
  if (!r.ok()) return r.status();
  if (r->rows() == 0)
    return absl::NotFoundError(absl::StrCat("engineering run ", what, " not found"));
  return StoredFromRow(*r, 0);
}

}  // namespace

absl::StatusOr<v1::EngineeringRun> PgRunStore::EnsureForJob(const v1::EngineeringRun& run) {
  if (auto made = pool_->Exec(
          kInsert, {run.id(), run.owner_id(), run.project_id(), run.job_id(),
                    std::to_string(run.status()), db::ToJsonColumn(run),
                    std::to_string(TimeUtil::TimestampToMicroseconds(run.create_time()))});
      !made.ok()) {
    return made.status();
  }
  auto stored = GetByJob(run.job_id());
  if (!stored.ok()) return stored.status();
  return std::move(stored->run);
}

absl::StatusOr<StoredRun> PgRunStore::Get(const std::string& run_id) {
  return OneRun(pool_->Exec(kGet, {run_id}), absl::StrCat("'", run_id, "'"));
}

absl::StatusOr<StoredRun> PgRunStore::GetByJob(const std::string& job_id) {
  return OneRun(pool_->Exec(kByJob, {job_id}), absl::StrCat("of job ", job_id));
}

absl::Status PgRunStore::Save(const StoredRun& s) {
  const auto& run = s.run;
  std::optional<std::string> end;
  if (run.has_end_time()) {
    end = std::to_string(TimeUtil::TimestampToMicroseconds(run.end_time()));
  }
  auto r = pool_->Exec(
      kSave, {run.id(), std::to_string(run.status()), db::ToJsonColumn(run),
              s.progress.workspace_id, s.progress.default_branch, s.progress.base_commit_sha,
              s.progress.commit_sha, MicrosOrNull(s.progress.commit_time), end});
  if (!r.ok()) return r.status();
  return absl::OkStatus();
}

absl::StatusOr<Page<v1::EngineeringRun>> PgRunStore::List(const std::string& project_id,
                                                          v1::EngineeringRunStatus status,
                                                          const PageRequest& page) {
  std::optional<std::string> after_time;
  std::string after_id;
  if (!page.after.empty()) {
    int64_t micros = 0;
    if (page.after.size() != 2 || !absl::SimpleAtoi(page.after[0], &micros)) {
      return absl::InvalidArgumentError("page_token: malformed");
    }
    after_time = std::to_string(micros);
    after_id = page.after[1];
  }
  auto r = pool_->Exec(kList, {project_id, std::to_string(status), after_time, after_id,
                               std::to_string(page.page_size + 1)});
  if (!r.ok()) return r.status();
  Page<v1::EngineeringRun> out;
  const int n = std::min(r->rows(), page.page_size);
  for (int i = 0; i < n; ++i) {
    auto s = StoredFromRow(*r, i);
    if (!s.ok()) return s.status();
    out.items.push_back(std::move(s->run));
  }
  if (r->rows() > page.page_size) {
    out.last_keys = {std::string(r->Get(n - 1, 6)), std::string(r->Get(n - 1, 7))};
  }
  return out;
}

absl::StatusOr<std::optional<v1::EngineeringRun>> PgRunStore::LatestSucceeded(
    const std::string& project_id) {
  auto r = pool_->Exec(kLatestSucceeded, {project_id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::nullopt;
  auto s = StoredFromRow(*r, 0);
  if (!s.ok()) return s.status();
  return std::move(s->run);
}

absl::Status PgRunStore::RecordUsage(const v1::EngineeringRun& run, const std::string& task_id,
                                     const agents::v1::Usage& u, absl::Time now) {
  return pool_
      ->Exec(kRecordUsage,
             {task_id, run.id(), run.owner_id(), run.project_id(), std::to_string(u.input_tokens()),
              std::to_string(u.output_tokens()), std::to_string(u.cache_read_tokens()),
              std::to_string(u.cache_write_tokens()), std::to_string(u.cost_usd_micros()),
              std::to_string(u.turns()), std::to_string(absl::ToUnixMicros(now))})
      .status();
}

absl::StatusOr<UsageTotals> PgRunStore::SumUsage(const UsageScope& scope) {
  auto r = pool_->Exec(kSumUsage,
                       {scope.run_id, scope.project_id, scope.owner_id, MicrosOrNull(scope.since)});
  if (!r.ok()) return r.status();
  UsageTotals out;
  if (r->rows() == 1) {
    out.usage.set_input_tokens(r->GetInt64(0, 0));
    out.usage.set_output_tokens(r->GetInt64(0, 1));
    out.usage.set_cache_read_tokens(r->GetInt64(0, 2));
    out.usage.set_cache_write_tokens(r->GetInt64(0, 3));
    out.usage.set_cost_usd_micros(r->GetInt64(0, 4));
    out.usage.set_turns(static_cast<int32_t>(r->GetInt64(0, 5)));
    out.run_count = static_cast<int32_t>(r->GetInt64(0, 6));
  }
  return out;
}

}  // namespace orchestrator::engineering
