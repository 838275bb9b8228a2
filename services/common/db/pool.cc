#include "services/common/db/pool.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace orchestrator::db {
namespace {

std::string TrimmedError(const char* message) {
  std::string out = message ? message : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

absl::StatusCode CodeForSqlState(absl::string_view s) {
  if (s == "23505") return absl::StatusCode::kAlreadyExists;
  if (s == "23503") return absl::StatusCode::kFailedPrecondition;
  if (s == "23502" || s == "23514" || absl::StartsWith(s, "22")) {
    return absl::StatusCode::kInvalidArgument;
  }
  if (s == "40001" || s == "40P01" || s == "55P03") return absl::StatusCode::kAborted;
  if (s == "57014") return absl::StatusCode::kDeadlineExceeded;
  if (absl::StartsWith(s, "08") || absl::StartsWith(s, "53") || s == "57P01" || s == "57P02" ||
      s == "57P03") {
    return absl::StatusCode::kUnavailable;
  }
  return absl::StatusCode::kInternal;
}

int64_t Result::affected() const {
  int64_t n = 0;
  (void)absl::SimpleAtoi(PQcmdTuples(result_.get()), &n);
  return n;
}

absl::string_view Result::Get(int row, int col) const {
  return absl::string_view(PQgetvalue(result_.get(), row, col),
                           PQgetlength(result_.get(), row, col));
}

int64_t Result::GetInt64(int row, int col) const {
  int64_t v = 0;
  (void)absl::SimpleAtoi(Get(row, col), &v);
  return v;
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::string& conninfo,
                                                             std::chrono::seconds connect_timeout) {
  // Keywords first, then the caller's conninfo (which may override them).
  // JIT compiles plans for analytics; our statements are short OLTP ones
  // that it only slows down. The caller's conninfo may still override it.
  const char* keys[] = {"connect_timeout", "application_name", "options", "dbname", nullptr};
  std::string timeout = std::to_string(connect_timeout.count());
  const char* values[] = {timeout.c_str(), "orchestrator", "-c jit=off", conninfo.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn == nullptr) return absl::UnavailableError("database: out of memory connecting");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = TrimmedError(PQerrorMessage(conn));
    PQfinish(conn);
    return absl::UnavailableError(absl::StrCat("cannot connect to the database: ", message));
  }
  return std::unique_ptr<Connection>(new Connection(conn));
}

Connection::~Connection() { PQfinish(conn_); }

absl::StatusOr<Result> Connection::Check(PGresult* raw) {
  Result result(raw);
  ExecStatusType status = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;

  if (PQstatus(conn_) == CONNECTION_BAD) {
    broken_ = true;
    return absl::UnavailableError(
        absl::StrCat("database connection lost: ", TrimmedError(PQerrorMessage(conn_))));
  }
  const char* state = raw ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
  std::string message =
      TrimmedError(raw ? PQresultErrorField(raw, PG_DIAG_MESSAGE_PRIMARY) : nullptr);
  if (message.empty()) message = TrimmedError(PQerrorMessage(conn_));
  const char* constraint = raw ? PQresultErrorField(raw, PG_DIAG_CONSTRAINT_NAME) : nullptr;
  if (constraint != nullptr) absl::StrAppend(&message, " [constraint ", constraint, "]");
  absl::StatusCode code = state ? CodeForSqlState(state) : absl::StatusCode::kInternal;
  if (code == absl::StatusCode::kUnavailable) broken_ = true;
  return absl::Status(code, absl::StrCat("database: ", message));
}

absl::StatusOr<Result> Connection::Exec(const Statement& statement, const Params& params) {
  std::string name(statement.name);
  if (!prepared_.contains(name)) {
    std::string sql(statement.sql);
    auto prepared = Check(
        PQprepare(conn_, name.c_str(), sql.c_str(), static_cast<int>(params.size()), nullptr));
    if (!prepared.ok()) return prepared.status();
    prepared_.insert(name);
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  return Check(PQexecPrepared(conn_, name.c_str(), static_cast<int>(values.size()), values.data(),
                              nullptr, nullptr, 0));
}

absl::StatusOr<Result> Connection::ExecScript(absl::string_view sql) {
  std::string text(sql);
  return Check(PQexec(conn_, text.c_str()));
}

PooledConnection::~PooledConnection() {
  if (conn_ && pool_) pool_->Release(std::move(conn_));
}

Pool::Pool(PoolOptions options) : options_(std::move(options)) {}

Pool::~Pool() = default;

absl::StatusOr<PooledConnection> Pool::Acquire() {
  {
    absl::MutexLock lock(&mu_);
    auto available = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !idle_.empty() || open_ < options_.size;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&available),
                              absl::FromChrono(options_.acquire_timeout))) {
      return absl::UnavailableError("database: every pooled connection is busy; retry later");
    }
    if (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      return PooledConnection(this, std::move(conn));
    }
    ++open_;  // reserve a slot, connect outside the lock
  }
  auto conn = Connection::Open(options_.conninfo, options_.connect_timeout);
  if (!conn.ok()) {
    absl::MutexLock lock(&mu_);
    --open_;
    return conn.status();
  }
  return PooledConnection(this, std::move(*conn));
}

void Pool::Release(std::unique_ptr<Connection> conn) {
  absl::MutexLock lock(&mu_);
  if (conn->broken()) {
    --open_;
    return;
  }
  idle_.push_back(std::move(conn));
}

absl::StatusOr<Result> Pool::Exec(const Statement& statement, const Params& params) {
  auto conn = Acquire();
  if (!conn.ok()) return conn.status();
  return (*conn)->Exec(statement, params);
}

}  // namespace orchestrator::db
