#pragma once

#include "absl/strings/string_view.h"
#include "services/admin/domain/user_store.h"
#include "services/common/db/migrations.h"
#include "services/common/db/pool.h"

namespace orchestrator::db {
// The admin schema (store/migrations), embedded at build time.
const MigrationSet& AdminMigrations();
}  // namespace orchestrator::db

namespace orchestrator::admin {

// UserStore on PostgreSQL (schema "admin").
class PgUserStore final : public UserStore {
 public:
  explicit PgUserStore(db::PoolPtr pool) : pool_(std::move(pool)) {}

  absl::StatusOr<v1::User> InsertUser(const v1::User& user, absl::string_view request_id) override;
  absl::StatusOr<v1::User> GetUser(absl::string_view user_id) override;
  absl::StatusOr<Page<v1::User>> ListUsers(const PageRequest& page) override;
  absl::StatusOr<v1::User> DisableUser(absl::string_view user_id) override;
  absl::StatusOr<int64_t> CountUsers() override;
  absl::StatusOr<v1::Token> InsertToken(const v1::Token& token, absl::string_view token_hash,
                                        absl::string_view request_id) override;
  absl::StatusOr<TokenGrant> FindTokenByHash(absl::string_view token_hash) override;
  absl::StatusOr<v1::Token> GetToken(absl::string_view token_id) override;
  absl::StatusOr<Page<v1::Token>> ListTokens(absl::string_view user_id,
                                             const PageRequest& page) override;
  absl::StatusOr<v1::Token> RevokeToken(absl::string_view token_id) override;

 private:
  db::PoolPtr pool_;
};

}  // namespace orchestrator::admin
