#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace orchestrator::db {

// A SQL statement with a stable name; prepared once per connection, then
// executed with $1..$n text parameters.
struct Statement {
  absl::string_view name;
  absl::string_view sql;
};

// Text parameters; std::nullopt is SQL NULL.
using Params = std::vector<std::optional<std::string>>;

// SQL NULL for "", for optional columns such as idempotency keys.
inline std::optional<std::string> NullIfEmpty(absl::string_view s) {
  if (s.empty()) return std::nullopt;
  return std::string(s);
}

// A text[] parameter ($n::text[]) holding `items`.
inline std::string TextArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ",";
    out += "\"";
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += "\"";
  }
  return out + "}";
}

// A query's rows, read as text.
class Result final {
 public:
  explicit Result(PGresult* result) : result_(result, &PQclear) {}

  int rows() const { return PQntuples(result_.get()); }
  // Rows changed by INSERT/UPDATE/DELETE.
  int64_t affected() const;
  bool IsNull(int row, int col) const { return PQgetisnull(result_.get(), row, col) == 1; }
  absl::string_view Get(int row, int col) const;
  int64_t GetInt64(int row, int col) const;
  bool GetBool(int row, int col) const { return Get(row, col) == "t"; }

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> result_;
};

// One libpq connection. Not thread-safe: used by one caller at a time
// through the Pool.
class Connection final {
 public:
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const std::string& conninfo,
                                                          std::chrono::seconds connect_timeout);
  ~Connection();

  absl::StatusOr<Result> Exec(const Statement& statement, const Params& params = {});
  // Runs one or more statements without parameters (DDL, BEGIN/COMMIT).
  absl::StatusOr<Result> ExecScript(absl::string_view sql);

  // True once the server went away; the pool then discards the connection.
  bool broken() const { return broken_; }

 private:
  explicit Connection(PGconn* conn) : conn_(conn) {}
  absl::StatusOr<Result> Check(PGresult* result);

  PGconn* conn_;
  bool broken_ = false;
  absl::flat_hash_set<std::string> prepared_;
};

struct PoolOptions {
  // libpq conninfo; empty means libpq's defaults and PG* environment variables.
  std::string conninfo;
  int size = 8;
  std::chrono::milliseconds acquire_timeout{5000};
  std::chrono::seconds connect_timeout{5};
};

class Pool;

// A connection borrowed from the pool; returned (or discarded if broken) on
// destruction.
class PooledConnection final {
 public:
  PooledConnection(Pool* pool, std::unique_ptr<Connection> conn)
      : pool_(pool), conn_(std::move(conn)) {}
  PooledConnection(PooledConnection&&) = default;
  PooledConnection& operator=(PooledConnection&&) = default;
  ~PooledConnection();

  Connection* operator->() { return conn_.get(); }
  Connection& operator*() { return *conn_; }

 private:
  Pool* pool_;
  std::unique_ptr<Connection> conn_;
};

class Transaction;

// A bounded pool of connections, opened lazily. A lost server surfaces as
// UNAVAILABLE on the call that noticed it; the broken connection is dropped
// and the next call opens a fresh one.
class Pool final {
 public:
  explicit Pool(PoolOptions options);
  ~Pool();

  absl::StatusOr<PooledConnection> Acquire();

  // One statement on any connection, in its own implicit transaction.
  absl::StatusOr<Result> Exec(const Statement& statement, const Params& params = {});

  // Runs `body` inside BEGIN/COMMIT; rolls back when it returns an error.
  template <typename Body>
  absl::Status InTransaction(Body&& body);

 private:
  friend class PooledConnection;
  void Release(std::unique_ptr<Connection> conn);

  const PoolOptions options_;
  absl::Mutex mu_;
  // Idle connections, and how many connections exist (idle + lent, <= size).
  std::vector<std::unique_ptr<Connection>> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;
};

using PoolPtr = std::shared_ptr<Pool>;

// Statements inside one transaction, on one connection.
class Transaction final {
 public:
  explicit Transaction(Connection& conn) : conn_(conn) {}
  absl::StatusOr<Result> Exec(const Statement& statement, const Params& params = {}) {
    return conn_.Exec(statement, params);
  }

 private:
  Connection& conn_;
};

template <typename Body>
absl::Status Pool::InTransaction(Body&& body) {
  auto conn = Acquire();
  if (!conn.ok()) return conn.status();
  if (auto begin = (*conn)->ExecScript("BEGIN"); !begin.ok()) return begin.status();
  Transaction tx(**conn);
  absl::Status status = body(tx);
  if (!status.ok()) {
    if (!(*conn)->broken()) (void)(*conn)->ExecScript("ROLLBACK");
    return status;
  }
  auto commit = (*conn)->ExecScript("COMMIT");
  return commit.ok() ? absl::OkStatus() : commit.status();
}

// Maps a SQLSTATE to the canonical code callers act on (unique violation →
// ALREADY_EXISTS, serialization failure → ABORTED, connection loss →
// UNAVAILABLE, ...).
absl::StatusCode CodeForSqlState(absl::string_view sqlstate);

}  // namespace orchestrator::db
