#include "services/projects/store/pg_project_store.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "services/common/db/proto_json.h"

namespace orchestrator::projects {
namespace {

using google::protobuf::util::TimeUtil;

#define PROJECT_COLUMNS                                                                  \
  "id, owner_id, name, display_name, description, status, repository_url, template_id, " \
  "(extract(epoch FROM create_time) * 1000000)::bigint, "                                \
  "(extract(epoch FROM update_time) * 1000000)::bigint, "                                \
  "template_version, template_answers::text, run_contract::text, change_delivery, deploy_fix"

constexpr db::Statement kInsert{
    "projects_insert",
    "INSERT INTO projects.projects (id, owner_id, name, display_name, description, status, "
    "repository_url, template_id, create_request_id, template_version, template_answers, "
    "run_contract, change_delivery, deploy_fix) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12::jsonb, $13::int, $14::int) "
    "ON CONFLICT (owner_id, create_request_id) WHERE create_request_id IS NOT NULL DO NOTHING "
    "RETURNING " PROJECT_COLUMNS};
constexpr db::Statement kGetByRequest{
    "projects_get_by_request",
    "SELECT " PROJECT_COLUMNS
    " FROM projects.projects WHERE owner_id = $1 AND create_request_id = $2"};
constexpr db::Statement kGet{"projects_get",
                             "SELECT " PROJECT_COLUMNS " FROM projects.projects WHERE id = $1"};
// Keyset pagination, newest first; $1 owner ('' = all), $2 status (0 = any),
// $3/$4 the last row's (create micros, id) or NULL on the first page.
constexpr db::Statement kList{
    "projects_list",
    "SELECT " PROJECT_COLUMNS
    " FROM projects.projects "
    "WHERE ($1 = '' OR owner_id = $1) AND ($2::int = 0 OR status = $2::int) "
    "AND ($3::bigint IS NULL OR ((extract(epoch FROM create_time) * 1000000)::bigint, id) < "
    "($3::bigint, $4::text)) "
    "ORDER BY create_time DESC, id DESC LIMIT $5"};
constexpr db::Statement kUpdate{
    "projects_update",
    "UPDATE projects.projects SET "
    "display_name = CASE WHEN $2 THEN $3 ELSE display_name END, "
    "description = CASE WHEN $4 THEN $5 ELSE description END, "
    "status = CASE WHEN $6 THEN $7::int ELSE status END, "
    "repository_url = CASE WHEN $8 THEN $9 ELSE repository_url END, "
    "template_id = CASE WHEN $10 THEN $11 ELSE template_id END, "
    "template_version = CASE WHEN $12 THEN $13 ELSE template_version END, "
    "template_answers = CASE WHEN $14 THEN $15::jsonb ELSE template_answers END, "
    "run_contract = CASE WHEN $16 THEN $17::jsonb ELSE run_contract END, "
    "change_delivery = CASE WHEN $18 THEN $19::int ELSE change_delivery END, "
    "deploy_fix = CASE WHEN $20 THEN $21::int ELSE deploy_fix END, "
    "update_time = now() WHERE id = $1 RETURNING " PROJECT_COLUMNS};
constexpr db::Statement kDelete{"projects_delete", "DELETE FROM projects.projects WHERE id = $1"};

#define SECRET_COLUMNS                                          \
  "name, (extract(epoch FROM create_time) * 1000000)::bigint, " \
  "(extract(epoch FROM update_time) * 1000000)::bigint"

constexpr db::Statement kPutSecret{
    "secrets_put",
    "INSERT INTO projects.secrets (project_id, name, sealed_value) VALUES ($1, $2, $3) "
    "ON CONFLICT (project_id, name) DO UPDATE SET sealed_value = EXCLUDED.sealed_value, "
    "update_time = now() RETURNING " SECRET_COLUMNS};
constexpr db::Statement kListSecrets{"secrets_list",
                                     "SELECT " SECRET_COLUMNS
                                     " FROM projects.secrets WHERE project_id = $1 "
                                     "AND ($2::text IS NULL OR name > $2) ORDER BY name LIMIT $3"};
constexpr db::Statement kGetSecret{
    "secrets_get", "SELECT sealed_value FROM projects.secrets WHERE project_id = $1 AND name = $2"};
constexpr db::Statement kDeleteSecret{
    "secrets_delete", "DELETE FROM projects.secrets WHERE project_id = $1 AND name = $2"};

// template_answers as a JSON object of strings (a Struct's JSON mapping).
std::string AnswersColumn(const v1::Project& p) {
  google::protobuf::Struct answers;
  for (const auto& [name, value] : p.template_answers()) {
    (*answers.mutable_fields())[name].set_string_value(value);
  }
  return db::ToJsonColumn(answers);
}

absl::StatusOr<v1::Project> ProjectFromRow(const db::Result& r, int row) {
  v1::Project p;
  p.set_id(std::string(r.Get(row, 0)));
  p.set_owner_id(std::string(r.Get(row, 1)));
  p.set_name(std::string(r.Get(row, 2)));
  p.set_display_name(std::string(r.Get(row, 3)));
  p.set_description(std::string(r.Get(row, 4)));
  p.set_status(static_cast<v1::ProjectStatus>(r.GetInt64(row, 5)));
  p.set_repository_url(std::string(r.Get(row, 6)));
  p.set_template_id(std::string(r.Get(row, 7)));
  *p.mutable_create_time() = TimeUtil::MicrosecondsToTimestamp(r.GetInt64(row, 8));
  *p.mutable_update_time() = TimeUtil::MicrosecondsToTimestamp(r.GetInt64(row, 9));
  p.set_template_version(std::string(r.Get(row, 10)));
  auto answers = db::FromJsonColumn<google::protobuf::Struct>(r.Get(row, 11));
  if (!answers.ok()) return answers.status();
  for (const auto& [name, value] : answers->fields()) {
    if (value.kind_case() != google::protobuf::Value::kStringValue) {
      return absl::DataLossError(
          absl::StrCat("project '", p.id(), "': template answer '", name, "' is not a string"));
    }
    (*p.mutable_template_answers())[name] = value.string_value();
  }
  auto contract = db::FromJsonColumn<common::v1::RunContract>(r.Get(row, 12));
  if (!contract.ok()) return contract.status();
  // '{}' is no contract: left unset.
  if (contract->ByteSizeLong() > 0) *p.mutable_run_contract() = *std::move(contract);
  p.set_change_delivery(static_cast<v1::ChangeDelivery>(r.GetInt64(row, 13)));
  p.set_deploy_fix(static_cast<v1::DeployFix>(r.GetInt64(row, 14)));
  return p;
}

v1::Secret SecretFromRow(const db::Result& r, int row) {
  v1::Secret s;
  s.set_name(std::string(r.Get(row, 0)));
  *s.mutable_create_time() = TimeUtil::MicrosecondsToTimestamp(r.GetInt64(row, 1));
  *s.mutable_update_time() = TimeUtil::MicrosecondsToTimestamp(r.GetInt64(row, 2));
  return s;
}

std::string Flag(const std::vector<std::string>& fields, absl::string_view name) {
  return std::find(fields.begin(), fields.end(), name) != fields.end() ? "true" : "false";
}

}  // namespace

absl::StatusOr<v1::Project> PgProjectStore::Insert(const v1::Project& p,
                                                   absl::string_view request_id) {
  auto inserted =
      pool_->Exec(kInsert, {p.id(), p.owner_id(), p.name(), p.display_name(), p.description(),
                            std::to_string(p.status()), p.repository_url(), p.template_id(),
                            db::NullIfEmpty(request_id), p.template_version(), AnswersColumn(p),
                            db::ToJsonColumn(p.run_contract()), std::to_string(p.change_delivery()),
                            std::to_string(p.deploy_fix())});
  if (!inserted.ok()) return inserted.status();
  if (inserted->rows() == 1) return ProjectFromRow(*inserted, 0);
  // The same request came before: return what it created.
  auto earlier = pool_->Exec(kGetByRequest, {p.owner_id(), std::string(request_id)});
  if (!earlier.ok()) return earlier.status();
  if (earlier->rows() != 1) return absl::AbortedError("concurrent create with the same request_id");
  return ProjectFromRow(*earlier, 0);
}

absl::StatusOr<v1::Project> PgProjectStore::Get(absl::string_view project_id) {
  auto r = pool_->Exec(kGet, {std::string(project_id)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0)
    return absl::NotFoundError(absl::StrCat("project '", project_id, "' not found"));
  return ProjectFromRow(*r, 0);
}

absl::StatusOr<Page<v1::Project>> PgProjectStore::List(const ProjectFilter& filter,
                                                       const PageRequest& page) {
  const bool resume = page.after.size() == 2;
  auto r = pool_->Exec(kList, {filter.owner_id, std::to_string(filter.status),
                               resume ? std::optional<std::string>(page.after[0]) : std::nullopt,
                               resume ? std::optional<std::string>(page.after[1]) : std::nullopt,
                               std::to_string(page.page_size + 1)});
  if (!r.ok()) return r.status();
  Page<v1::Project> out;
  const int n = std::min(r->rows(), page.page_size);
  for (int i = 0; i < n; ++i) {
    auto p = ProjectFromRow(*r, i);
    if (!p.ok()) return p.status();
    out.items.push_back(*std::move(p));
  }
  if (r->rows() > page.page_size) {
    out.last_keys = {std::string(r->Get(n - 1, 8)), std::string(r->Get(n - 1, 0))};
  }
  return out;
}

absl::StatusOr<v1::Project> PgProjectStore::Update(const v1::Project& p,
                                                   const std::vector<std::string>& fields) {
  auto r = pool_->Exec(kUpdate, {p.id(),
                                 Flag(fields, "display_name"),
                                 p.display_name(),
                                 Flag(fields, "description"),
                                 p.description(),
                                 Flag(fields, "status"),
                                 std::to_string(p.status()),
                                 Flag(fields, "repository_url"),
                                 p.repository_url(),
                                 Flag(fields, "template_id"),
                                 p.template_id(),
                                 Flag(fields, "template_version"),
                                 p.template_version(),
                                 Flag(fields, "template_answers"),
                                 AnswersColumn(p),
                                 Flag(fields, "run_contract"),
                                 db::ToJsonColumn(p.run_contract()),
                                 Flag(fields, "change_delivery"),
                                 std::to_string(p.change_delivery()),
                                 Flag(fields, "deploy_fix"),
                                 std::to_string(p.deploy_fix())});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return absl::NotFoundError(absl::StrCat("project '", p.id(), "' not found"));
  return ProjectFromRow(*r, 0);
}

absl::Status PgProjectStore::Delete(absl::string_view project_id) {
  auto r = pool_->Exec(kDelete, {std::string(project_id)});
  if (!r.ok()) return r.status();
  if (r->affected() == 0)
    return absl::NotFoundError(absl::StrCat("project '", project_id, "' not found"));
  return absl::OkStatus();
}

absl::StatusOr<v1::Secret> PgProjectStore::PutSecret(absl::string_view project_id,
                                                     absl::string_view name,
                                                     absl::string_view sealed_value) {
  auto r = pool_->Exec(kPutSecret,
                       {std::string(project_id), std::string(name), std::string(sealed_value)});
  if (!r.ok()) {
    if (absl::IsFailedPrecondition(r.status())) {
      return absl::NotFoundError(absl::StrCat("project '", project_id, "' not found"));
    }
    return r.status();
  }
  return SecretFromRow(*r, 0);
}

absl::StatusOr<Page<v1::Secret>> PgProjectStore::ListSecrets(absl::string_view project_id,
                                                             const PageRequest& page) {
  auto r = pool_->Exec(
      kListSecrets,
      {std::string(project_id),
       page.after.size() == 1 ? std::optional<std::string>(page.after[0]) : std::nullopt,
       std::to_string(page.page_size + 1)});
  if (!r.ok()) return r.status();
  Page<v1::Secret> out;
  const int n = std::min(r->rows(), page.page_size);
  for (int i = 0; i < n; ++i) out.items.push_back(SecretFromRow(*r, i));
  if (r->rows() > page.page_size) out.last_keys = {std::string(r->Get(n - 1, 0))};
  return out;
}

absl::StatusOr<std::string> PgProjectStore::GetSealedSecret(absl::string_view project_id,
                                                            absl::string_view name) {
  auto r = pool_->Exec(kGetSecret, {std::string(project_id), std::string(name)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return absl::NotFoundError(absl::StrCat("secret '", name, "' not found"));
  return std::string(r->Get(0, 0));
}

absl::Status PgProjectStore::DeleteSecret(absl::string_view project_id, absl::string_view name) {
  auto r = pool_->Exec(kDeleteSecret, {std::string(project_id), std::string(name)});
  if (!r.ok()) return r.status();
  if (r->affected() == 0) return absl::NotFoundError(absl::StrCat("secret '", name, "' not found"));
  return absl::OkStatus();
}

}  // namespace orchestrator::projects
