#pragma once

#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "services/common/db/pool.h"

namespace orchestrator::db {

// One numbered SQL file (NNNN_name.sql) of a component's schema.
struct Migration {
  int version;
  absl::string_view name;
  absl::string_view sql;
};

// A component's schema and its migrations in order; generated from
// services/<svc>/store/migrations/ by orchestrator_migrations() in CMake.
struct MigrationSet {
  absl::string_view schema;
  std::vector<Migration> migrations;
};

// Brings `set.schema` up to date: under a per-schema advisory lock (so
// replicas starting together apply each file once), every migration not yet
// recorded in <schema>.schema_migrations runs in its own transaction.
// Running it again changes nothing.
absl::Status ApplyMigrations(Pool& pool, const MigrationSet& set);

}  // namespace orchestrator::db
