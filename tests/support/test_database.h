#pragma once

#include <string>

#include "services/common/db/pool.h"

namespace orchestrator::testing {

// A fresh, empty database in the PostgreSQL cluster named by the PG*
// environment (tools/test runs ctest under pg_virtualenv), dropped again when
// the object goes away. Each test gets its own, so tests run in parallel.
class TestDatabase final {
 public:
  TestDatabase();
  ~TestDatabase();

  // libpq conninfo for this database (other parameters from PG*).
  const std::string& conninfo() const { return conninfo_; }
  db::PoolPtr NewPool(int size = 4) const;

 private:
  std::string name_;
  std::string conninfo_;
};

}  // namespace orchestrator::testing
