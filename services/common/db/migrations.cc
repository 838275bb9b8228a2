#include "services/common/db/migrations.h"

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "services/common/logging/format.h"
#include "spdlog/spdlog.h"

namespace orchestrator::db {
namespace {

constexpr Statement kLock{"migrations_lock",
                          "SELECT pg_advisory_lock(hashtext('orchestrator.migrations.' || $1))"};
constexpr Statement kUnlock{
    "migrations_unlock", "SELECT pg_advisory_unlock(hashtext('orchestrator.migrations.' || $1))"};

bool IsIdentifier(absl::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

absl::Status ApplyLocked(Connection& conn, const MigrationSet& set) {
  const std::string schema(set.schema);
  auto created = conn.ExecScript(absl::StrCat(
      "CREATE SCHEMA IF NOT EXISTS ", schema, ";", "CREATE TABLE IF NOT EXISTS ", schema,
      ".schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
      "applied_time timestamptz NOT NULL DEFAULT now())"));
  if (!created.ok()) return created.status();

  auto applied =
      conn.ExecScript(absl::StrCat("SELECT version FROM ", schema, ".schema_migrations"));
  if (!applied.ok()) return applied.status();
  std::set<int64_t> done;
  for (int r = 0; r < applied->rows(); ++r) done.insert(applied->GetInt64(r, 0));

  for (const auto& m : set.migrations) {
    if (done.contains(m.version)) continue;
    std::string script = absl::StrCat("BEGIN;\n", m.sql, "\n;INSERT INTO ", schema,
                                      ".schema_migrations (version, name) VALUES (", m.version,
                                      ", '", m.name, "');\nCOMMIT;");
    auto ran = conn.ExecScript(script);
    if (!ran.ok()) {
      (void)conn.ExecScript("ROLLBACK");
      return absl::Status(
          ran.status().code(),
          absl::StrCat("migration ", schema, "/", absl::Dec(m.version, absl::kZeroPad4), "_",
                       m.name, " failed: ", ran.status().message()));
    }
    spdlog::info("migration applied schema={} version={} name={}", schema, m.version, m.name);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyMigrations(Pool& pool, const MigrationSet& set) {
  if (!IsIdentifier(set.schema)) {
    return absl::InvalidArgumentError(absl::StrCat("bad schema name '", set.schema, "'"));
  }
  for (const auto& m : set.migrations) {
    if (!IsIdentifier(m.name)) {
      return absl::InvalidArgumentError(absl::StrCat("bad migration name '", m.name, "'"));
    }
  }
  auto conn = pool.Acquire();
  if (!conn.ok()) return conn.status();
  const Params key{std::string(set.schema)};
  if (auto locked = (*conn)->Exec(kLock, key); !locked.ok()) return locked.status();
  absl::Status status = ApplyLocked(**conn, set);
  if (!(*conn)->broken()) (void)(*conn)->Exec(kUnlock, key);
  return status;
}

}  // namespace orchestrator::db
