#include "services/scaffolder/store/pg_repository_ledger.h"

namespace orchestrator::scaffolder {
namespace {

constexpr db::Statement kFind{
    "scaffolder_ledger_find",
    "SELECT project_id, host, name FROM scaffolder.repository_ledger WHERE job_id = $1"};
// A job intends one repository: a second intent (another attempt) keeps
// the first name.
constexpr db::Statement kIntend{
    "scaffolder_ledger_intend",
    "INSERT INTO scaffolder.repository_ledger (job_id, project_id, host, name) "
    "VALUES ($1, $2, $3, $4) ON CONFLICT (job_id) DO NOTHING"};

}  // namespace

absl::StatusOr<std::optional<RepositoryLedger::Entry>> PgRepositoryLedger::Find(
    const std::string& job_id) {
  auto r = pool_->Exec(kFind, {job_id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::nullopt;
  return Entry{job_id, std::string(r->Get(0, 0)), std::string(r->Get(0, 1)),
               std::string(r->Get(0, 2))};
}

absl::Status PgRepositoryLedger::Intend(const Entry& entry) {
  return pool_->Exec(kIntend, {entry.job_id, entry.project_id, entry.host, entry.name}).status();
}

}  // namespace orchestrator::scaffolder
