// The libpq layer and the migrations runner against a real PostgreSQL.
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/db/migrations.h"
#include "services/common/db/pool.h"
#include "tests/support/test_database.h"

namespace orchestrator::db {
namespace {

using ::testing::HasSubstr;

const MigrationSet& Widgets() {
  static const MigrationSet set{
      "widgets",
      {{1, "create", "CREATE TABLE widgets.items (id text PRIMARY KEY, n integer NOT NULL)"},
       {2, "add_colour",
        "ALTER TABLE widgets.items ADD COLUMN colour text NOT NULL DEFAULT 'red'"}}};
  return set;
}

constexpr Statement kCountApplied{"count_applied",
                                  "SELECT count(*) FROM widgets.schema_migrations"};
constexpr Statement kInsert{"insert_item",
                            "INSERT INTO widgets.items (id, n) VALUES ($1, $2::int)"};
constexpr Statement kCount{"count_items", "SELECT count(*) FROM widgets.items"};
constexpr Statement kBackendPid{"backend_pid", "SELECT pg_backend_pid()"};

TEST(Migrations, ApplyOnceAndAgainChangesNothing) {
  testing::TestDatabase db;
  auto pool = db.NewPool();
  ASSERT_TRUE(ApplyMigrations(*pool, Widgets()).ok());
  ASSERT_TRUE(pool->Exec(kInsert, {"a", "1"}).ok());
  ASSERT_TRUE(ApplyMigrations(*pool, Widgets()).ok());  // a restart
  EXPECT_EQ(pool->Exec(kCountApplied)->GetInt64(0, 0), 2);
  EXPECT_EQ(pool->Exec(kCount)->GetInt64(0, 0), 1);  // data kept
}

TEST(Migrations, ReplicasStartingTogetherApplyEachFileOnce) {
  testing::TestDatabase db;
  std::vector<absl::Status> results(4);
  std::vector<std::thread> replicas;
  for (int i = 0; i < 4; ++i) {
    replicas.emplace_back([&, i] {
      auto pool = db.NewPool(1);
      results[i] = ApplyMigrations(*pool, Widgets());
    });
  }
  for (auto& t : replicas) t.join();
  for (const auto& r : results) EXPECT_TRUE(r.ok()) << r;
  EXPECT_EQ(db.NewPool()->Exec(kCountApplied)->GetInt64(0, 0), 2);
}

TEST(Migrations, AFailingFileLeavesNothingHalfApplied) {
  testing::TestDatabase db;
  MigrationSet broken{"widgets",
                      {{1, "create", "CREATE TABLE widgets.items (id text PRIMARY KEY)"},
                       {2, "broken", "CREATE TABLE widgets.other (x int); SELECT no_such_column"}}};
  auto pool = db.NewPool();
  absl::Status s = ApplyMigrations(*pool, broken);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("0002"));
  EXPECT_EQ(pool->Exec(kCountApplied)->GetInt64(0, 0), 1);
  auto other = pool->Exec(Statement{"other", "SELECT to_regclass('widgets.other') IS NULL"});
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->GetBool(0, 0));
}

TEST(Pool, ConstraintViolationsMapToCanonicalCodes) {
  testing::TestDatabase db;
  auto pool = db.NewPool();
  ASSERT_TRUE(ApplyMigrations(*pool, Widgets()).ok());
  ASSERT_TRUE(pool->Exec(kInsert, {"a", "1"}).ok());
  auto dup = pool->Exec(kInsert, {"a", "2"});
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
  auto bad = pool->Exec(kInsert, {"b", "not a number"});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  auto null = pool->Exec(kInsert, {std::nullopt, "1"});
  EXPECT_EQ(null.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Pool, TransactionsCommitOrRollBackWhole) {
  testing::TestDatabase db;
  auto pool = db.NewPool();
  ASSERT_TRUE(ApplyMigrations(*pool, Widgets()).ok());
  absl::Status failed = pool->InTransaction([](Transaction& tx) -> absl::Status {
    if (auto r = tx.Exec(kInsert, {"a", "1"}); !r.ok()) return r.status();
    return absl::AbortedError("changed my mind");
  });
  EXPECT_EQ(failed.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(pool->Exec(kCount)->GetInt64(0, 0), 0);
  ASSERT_TRUE(pool->InTransaction([](Transaction& tx) -> absl::Status {
                    if (auto r = tx.Exec(kInsert, {"a", "1"}); !r.ok()) return r.status();
                    return tx.Exec(kInsert, {"b", "2"}).status();
                  })
                  .ok());
  EXPECT_EQ(pool->Exec(kCount)->GetInt64(0, 0), 2);
}

TEST(Pool, ALostConnectionIsUnavailableThenRecoveredOnTheNextCall) {
  testing::TestDatabase db;
  auto pool = db.NewPool(1);
  auto pid = pool->Exec(kBackendPid);
  ASSERT_TRUE(pid.ok());
  const std::string victim(pid->Get(0, 0));

  // Another session kills ours, as a server restart or a network cut would.
  auto killer = db.NewPool(1);
  ASSERT_TRUE(
      killer->Exec(Statement{"kill", "SELECT pg_terminate_backend($1::int)"}, {victim}).ok());

  auto lost = pool->Exec(kBackendPid);
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  auto recovered = pool->Exec(kBackendPid);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_NE(std::string(recovered->Get(0, 0)), victim);
}

TEST(Pool, AnUnreachableServerIsUnavailableWithoutTheDsnsSecrets) {
  Pool pool(PoolOptions{"host=127.0.0.1 port=1 password=sup3rsecret connect_timeout=2", 1});
  auto r = pool.Exec(kBackendPid);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), ::testing::Not(HasSubstr("sup3rsecret")));
}

TEST(Pool, WhenEveryConnectionIsBusyCallersWaitThenGetUnavailable) {
  testing::TestDatabase db;
  Pool pool(PoolOptions{db.conninfo(), 1, std::chrono::milliseconds(200)});
  auto held = pool.Acquire();
  ASSERT_TRUE(held.ok());
  auto waited = pool.Acquire();
  EXPECT_EQ(waited.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace orchestrator::db
