#include "tests/support/test_database.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "services/common/crypto/secret_box.h"

namespace orchestrator::testing {
namespace {

void Admin(const std::string& sql) {
  db::Pool pool(db::PoolOptions{"", 1});
  auto r = pool.Exec(db::Statement{"", sql});
  if (!r.ok()) {
    ADD_FAILURE() << sql << ": " << r.status();
  }
}

}  // namespace

TestDatabase::TestDatabase() {
  if (std::getenv("PGHOST") == nullptr && std::getenv("PGPORT") == nullptr) {
    ADD_FAILURE() << "no PostgreSQL: run integration tests through tools/test (pg_virtualenv "
                     "sets PGHOST/PGPORT/PGUSER/PGPASSWORD)";
  }
  std::string suffix = NewId("");
  name_ = absl::StrCat("t_", suffix);
  Admin(absl::StrCat("CREATE DATABASE ", name_));
  conninfo_ = absl::StrCat("dbname=", name_);
}

TestDatabase::~TestDatabase() {
  Admin(absl::StrCat("DROP DATABASE IF EXISTS ", name_, " WITH (FORCE)"));
}

db::PoolPtr TestDatabase::NewPool(int size) const {
  return std::make_shared<db::Pool>(db::PoolOptions{conninfo_, size});
}

}  // namespace orchestrator::testing
