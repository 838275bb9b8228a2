#include "services/deploy/store/pg_release_store.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "services/common/crypto/secret_box.h"

namespace orchestrator::deploy {
namespace {

using google::protobuf::util::TimeUtil;

#define RELEASE_COLUMNS                                                              \
  "id, project_id, owner_id, version, commit_sha, status, url, job_id, "             \
  "rollback_of_release_id, server_id, image, container_name, port, failure_reason, " \
  "health_path, "                                                                    \
  "(extract(epoch FROM create_time) * 1000000)::bigint, "                            \
  "(extract(epoch FROM live_time) * 1000000)::bigint, "                              \
  "(extract(epoch FROM superseded_time) * 1000000)::bigint"

constexpr db::Statement kByJob{"deploy_release_by_job",
                               "SELECT " RELEASE_COLUMNS " FROM deploy.releases WHERE job_id = $1"};
// The next version under the project's advisory lock: two jobs of one
// project never take the same number (the unique index would refuse it).
constexpr db::Statement kLockProject{"deploy_lock_project",
                                     "SELECT pg_advisory_xact_lock(hashtext('deploy:' || $1))"};
constexpr db::Statement kInsert{
    "deploy_release_insert",
    "INSERT INTO deploy.releases (id, project_id, owner_id, version, commit_sha, status, job_id, "
    "rollback_of_release_id, server_id) SELECT $1, $2, $3, "
    "COALESCE((SELECT max(version) FROM deploy.releases WHERE project_id = $2), 0) + 1, $4, 1, "
    "$5, $6, $7 ON CONFLICT (job_id) DO NOTHING"};
constexpr db::Statement kGet{"deploy_release_get",
                             "SELECT " RELEASE_COLUMNS " FROM deploy.releases WHERE id = $1"};
constexpr db::Statement kLive{"deploy_release_live",
                              "SELECT " RELEASE_COLUMNS
                              " FROM deploy.releases WHERE project_id = $1 AND status = 2"};
constexpr db::Statement kAllLive{"deploy_release_all_live",
                                 "SELECT " RELEASE_COLUMNS
                                 " FROM deploy.releases WHERE status = 2 ORDER BY project_id"};
constexpr db::Statement kList{
    "deploy_release_list",
    "SELECT " RELEASE_COLUMNS
    " FROM deploy.releases WHERE project_id = $1 AND ($2::int = 0 OR status = $2::int) "
    "AND ($3::bigint IS NULL OR version < $3::bigint) ORDER BY version DESC LIMIT $4"};
constexpr db::Statement kSetRuntime{
    "deploy_release_set_runtime",
    "UPDATE deploy.releases SET image = $2, container_name = $3, port = $4::int, server_id = $5, "
    "health_path = $6 WHERE id = $1"};
constexpr db::Statement kSupersede{
    "deploy_release_supersede",
    "UPDATE deploy.releases SET status = 3, superseded_time = to_timestamp($3::bigint / 1e6) "
    "WHERE project_id = $1 AND status = 2 AND id <> $2 RETURNING " RELEASE_COLUMNS};
constexpr db::Statement kMakeLive{
    "deploy_release_make_live",
    "UPDATE deploy.releases SET status = 2, url = $2, failure_reason = '', "
    "live_time = COALESCE(live_time, to_timestamp($3::bigint / 1e6)) "
    "WHERE id = $1 AND status IN (1, 2) RETURNING project_id"};
constexpr db::Statement kRecordUnhealthy{
    "deploy_release_record_unhealthy",
    "UPDATE deploy.releases SET failure_reason = $2 WHERE id = $1 AND status = 2"};
constexpr db::Statement kRecordProbe{
    "deploy_release_record_probe",
    "UPDATE deploy.releases SET probe_failures = CASE WHEN $2::boolean THEN 0 "
    "ELSE probe_failures + 1 END WHERE id = $1 RETURNING probe_failures"};
constexpr db::Statement kMarkFailed{
    "deploy_release_mark_failed",
    "UPDATE deploy.releases SET status = 4, failure_reason = $2 WHERE id = $1 AND status = 1"};

constexpr db::Statement kEnsureInstallation{
    "deploy_ensure_installation",
    "INSERT INTO deploy.installation (id) VALUES ($1) ON CONFLICT (singleton) DO NOTHING"};
constexpr db::Statement kInstallation{"deploy_installation", "SELECT id FROM deploy.installation"};
constexpr db::Statement kFailAbandoned{"deploy_release_fail_abandoned",
                                       "UPDATE deploy.releases SET status = 4, failure_reason = $3 "
                                       "WHERE project_id = $1 AND status = 1 AND id <> $2"};

v1::Release ReleaseFromRow(const db::Result& r, int row) {
  v1::Release x;
  x.set_id(std::string(r.Get(row, 0)));
  x.set_project_id(std::string(r.Get(row, 1)));
  x.set_owner_id(std::string(r.Get(row, 2)));
  x.set_version(r.GetInt64(row, 3));
  x.set_commit_sha(std::string(r.Get(row, 4)));
  x.set_status(static_cast<v1::ReleaseStatus>(r.GetInt64(row, 5)));
  x.set_url(std::string(r.Get(row, 6)));
  x.set_job_id(std::string(r.Get(row, 7)));
  x.set_rollback_of_release_id(std::string(r.Get(row, 8)));
  x.set_server_id(std::string(r.Get(row, 9)));
  x.set_image(std::string(r.Get(row, 10)));
  x.set_container_name(std::string(r.Get(row, 11)));
  x.set_port(static_cast<int32_t>(r.GetInt64(row, 12)));
  x.set_failure_reason(std::string(r.Get(row, 13)));
  x.set_health_path(std::string(r.Get(row, 14)));
  *x.mutable_create_time() = TimeUtil::MicrosecondsToTimestamp(r.GetInt64(row, 15));
  if (!r.IsNull(row, 16)) {
    *x.mutable_live_time() = TimeUtil::MicrosecondsToTimestamp(r.GetInt64(row, 16));
  }
  if (!r.IsNull(row, 17)) {
    *x.mutable_superseded_time() = TimeUtil::MicrosecondsToTimestamp(r.GetInt64(row, 17));
  }
  return x;
}

}  // namespace

absl::StatusOr<std::string> PgReleaseStore::InstallationId() {
  if (auto made = pool_->Exec(kEnsureInstallation, {NewId("ins_")}); !made.ok()) {
    return made.status();
  }
  auto r = pool_->Exec(kInstallation, {});
  if (!r.ok()) return r.status();
  if (r->rows() != 1) return absl::InternalError("deploy.installation has no row");
  return std::string(r->Get(0, 0));
}

absl::StatusOr<v1::Release> PgReleaseStore::EnsureForJob(const v1::Release& release) {
  absl::StatusOr<v1::Release> out = absl::InternalError("no release");
  auto s = pool_->InTransaction([&](db::Transaction& tx) -> absl::Status {
    if (auto lock = tx.Exec(kLockProject, {release.project_id()}); !lock.ok()) {
      return lock.status();
    }
    if (auto made = tx.Exec(
            kInsert, {NewId("rel_"), release.project_id(), release.owner_id(), release.commit_sha(),
                      release.job_id(), release.rollback_of_release_id(), release.server_id()});
        !made.ok()) {
      return made.status();
    }
    auto r = tx.Exec(kByJob, {release.job_id()});
    if (!r.ok()) return r.status();
    if (r->rows() != 1) return absl::InternalError("the job's release vanished");
    out = ReleaseFromRow(*r, 0);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<v1::Release> PgReleaseStore::Get(const std::string& release_id) {
  auto r = pool_->Exec(kGet, {release_id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) {
    return absl::NotFoundError(absl::StrCat("release '", release_id, "' not found"));
  }
  return ReleaseFromRow(*r, 0);
}

absl::StatusOr<std::optional<v1::Release>> PgReleaseStore::Live(const std::string& project_id) {
  auto r = pool_->Exec(kLive, {project_id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::nullopt;
  return ReleaseFromRow(*r, 0);
}

absl::StatusOr<std::vector<v1::Release>> PgReleaseStore::AllLive() {
  auto r = pool_->Exec(kAllLive, {});
  if (!r.ok()) return r.status();
  std::vector<v1::Release> out;
  for (int i = 0; i < r->rows(); ++i) out.push_back(ReleaseFromRow(*r, i));
  return out;
}

absl::StatusOr<Page<v1::Release>> PgReleaseStore::List(const std::string& project_id,
                                                       v1::ReleaseStatus status,
                                                       const PageRequest& page) {
  std::optional<std::string> after;
  if (!page.after.empty()) {
    int64_t version = 0;
    if (page.after.size() != 1 || !absl::SimpleAtoi(page.after[0], &version) || version < 0) {
      return absl::InvalidArgumentError("page_token: malformed");
    }
    after = std::to_string(version);
  }
  auto r = pool_->Exec(
      kList, {project_id, std::to_string(status), after, std::to_string(page.page_size + 1)});
  if (!r.ok()) return r.status();
  Page<v1::Release> out;
  const int n = std::min(r->rows(), page.page_size);
  for (int i = 0; i < n; ++i) out.items.push_back(ReleaseFromRow(*r, i));
  if (r->rows() > page.page_size) {
    out.last_keys = {std::to_string(out.items.back().version())};
  }
  return out;
}

absl::Status PgReleaseStore::SetRuntime(const v1::Release& release) {
  return pool_
      ->Exec(kSetRuntime,
             {release.id(), release.image(), release.container_name(),
              std::to_string(release.port()), release.server_id(), release.health_path()})
      .status();
}

absl::Status PgReleaseStore::RecordUnhealthy(const std::string& release_id,
                                             const std::string& reason) {
  return pool_->Exec(kRecordUnhealthy, {release_id, reason}).status();
}

absl::StatusOr<int> PgReleaseStore::RecordProbe(const std::string& release_id, bool passed) {
  auto r = pool_->Exec(kRecordProbe, {release_id, passed ? "true" : "false"});
  if (!r.ok()) return r.status();
  if (r->rows() == 0)
    return absl::NotFoundError(absl::StrCat("release '", release_id, "' not found"));
  return static_cast<int>(r->GetInt64(0, 0));
}

absl::StatusOr<std::optional<v1::Release>> PgReleaseStore::MakeLive(const std::string& release_id,
                                                                    const std::string& url,
                                                                    absl::Time now) {
  std::optional<v1::Release> superseded;
  const std::string micros = std::to_string(absl::ToUnixMicros(now));
  auto s = pool_->InTransaction([&](db::Transaction& tx) -> absl::Status {
    auto live = tx.Exec(kGet, {release_id});
    if (!live.ok()) return live.status();
    if (live->rows() == 0) {
      return absl::NotFoundError(absl::StrCat("release '", release_id, "' not found"));
    }
    const std::string project_id(live->Get(0, 1));
    if (auto lock = tx.Exec(kLockProject, {project_id}); !lock.ok()) return lock.status();
    auto old = tx.Exec(kSupersede, {project_id, release_id, micros});
    if (!old.ok()) return old.status();
    if (old->rows() > 0) superseded = ReleaseFromRow(*old, 0);
    auto made = tx.Exec(kMakeLive, {release_id, url, micros});
    if (!made.ok()) return made.status();
    if (made->rows() == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("release ", release_id, " is no longer deploying"));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return superseded;
}

absl::Status PgReleaseStore::MarkFailed(const std::string& release_id, const std::string& reason) {
  return pool_->Exec(kMarkFailed, {release_id, reason.substr(0, 4096)}).status();
}

absl::Status PgReleaseStore::FailAbandoned(const std::string& project_id, const std::string& except,
                                           const std::string& reason) {
  return pool_->Exec(kFailAbandoned, {project_id, except, reason}).status();
}

}  // namespace orchestrator::deploy
