#include "services/admin/store/pg_user_store.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace orchestrator::admin {
namespace {

using google::protobuf::util::TimeUtil;

#define USER_COLUMNS                                                                        \
  "u.id, u.name, u.display_name, u.role, u.disabled, (extract(epoch FROM u.create_time) * " \
  "1000000)::bigint"
#define TOKEN_COLUMNS                                                                       \
  "t.id, t.user_id, t.kind, t.description, t.permissions, "                                 \
  "(extract(epoch FROM t.create_time) * 1000000)::bigint, "                                 \
  "(extract(epoch FROM t.expire_time) * 1000000)::bigint, "                                 \
  "(extract(epoch FROM t.revoke_time) * 1000000)::bigint, t.parent_token_id, t.worker_id, " \
  "t.project_id"

constexpr db::Statement kInsertUser{
    "users_insert",
    "WITH ins AS (INSERT INTO admin.users (id, name, display_name, role, create_request_id) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (create_request_id) DO NOTHING RETURNING *) "
    "SELECT " USER_COLUMNS
    " FROM ins u UNION ALL "
    "SELECT " USER_COLUMNS
    " FROM admin.users u WHERE u.create_request_id = $5 "
    "AND NOT EXISTS (SELECT 1 FROM ins)"};
constexpr db::Statement kGetUser{"users_get",
                                 "SELECT " USER_COLUMNS " FROM admin.users u WHERE u.id = $1"};
constexpr db::Statement kListUsers{"users_list",
                                   "SELECT " USER_COLUMNS
                                   " FROM admin.users u WHERE ($1::text IS NULL OR u.name > $1) "
                                   "ORDER BY u.name LIMIT $2"};
constexpr db::Statement kDisableUser{
    "users_disable",
    "UPDATE admin.users u SET disabled = true WHERE u.id = $1 RETURNING " USER_COLUMNS};
constexpr db::Statement kCountUsers{"users_count", "SELECT count(*) FROM admin.users"};

constexpr db::Statement kInsertToken{
    "tokens_insert",
    "WITH ins AS (INSERT INTO admin.tokens (id, user_id, token_hash, kind, description, "
    "permissions, "
    "expire_time, create_request_id, parent_token_id, worker_id, project_id) VALUES ($1, $2, $3, "
    "$4, $5, $6, to_timestamp($7::bigint / 1000000.0), $8, $9, $10, $11) "
    "ON CONFLICT (user_id, create_request_id) WHERE create_request_id IS NOT NULL DO NOTHING "
    "RETURNING *) "
    "SELECT " TOKEN_COLUMNS
    " FROM ins t UNION ALL "
    "SELECT " TOKEN_COLUMNS
    " FROM admin.tokens t WHERE t.user_id = $2 AND t.create_request_id = $8 "
    "AND NOT EXISTS (SELECT 1 FROM ins)"};
// The token with its user, and whether any token it was derived from is
// revoked (a child created while its parent was being revoked is caught here).
constexpr db::Statement kFindToken{
    "tokens_find",
    "WITH RECURSIVE chain AS (SELECT id, parent_token_id, revoke_time, 0 AS depth "
    "FROM admin.tokens WHERE token_hash = $1 "
    "UNION ALL SELECT p.id, p.parent_token_id, p.revoke_time, c.depth + 1 "
    "FROM admin.tokens p JOIN chain c ON p.id = c.parent_token_id WHERE c.depth < 64) "
    "SELECT " TOKEN_COLUMNS ", " USER_COLUMNS
    ", EXISTS (SELECT 1 FROM chain WHERE depth > 0 AND revoke_time IS NOT NULL)"
    " FROM admin.tokens t JOIN admin.users u ON u.id = t.user_id "
    "WHERE t.token_hash = $1"};
constexpr db::Statement kGetToken{"tokens_get",
                                  "SELECT " TOKEN_COLUMNS " FROM admin.tokens t WHERE t.id = $1"};
constexpr db::Statement kListTokens{
    "tokens_list",
    "SELECT " TOKEN_COLUMNS
    " FROM admin.tokens t WHERE t.user_id = $1 AND ($2::bigint IS NULL OR "
    "((extract(epoch FROM t.create_time) * 1000000)::bigint, t.id) < ($2::bigint, $3::text)) "
    "ORDER BY t.create_time DESC, t.id DESC LIMIT $4"};
// The token and every token derived from it, however deep.
constexpr db::Statement kRevokeToken{
    "tokens_revoke",
    "WITH RECURSIVE tree AS (SELECT id FROM admin.tokens WHERE id = $1 "
    "UNION SELECT c.id FROM admin.tokens c JOIN tree ON c.parent_token_id = tree.id), "
    "upd AS (UPDATE admin.tokens t SET revoke_time = coalesce(revoke_time, now()) "
    "WHERE t.id IN (SELECT id FROM tree) RETURNING t.*) "
    "SELECT " TOKEN_COLUMNS " FROM upd t WHERE t.id = $1"};

v1::User UserFromRow(const db::Result& r, int row, int col) {
  v1::User u;
  u.set_id(std::string(r.Get(row, col)));
  u.set_name(std::string(r.Get(row, col + 1)));
  u.set_display_name(std::string(r.Get(row, col + 2)));
  u.set_role(static_cast<v1::Role>(r.GetInt64(row, col + 3)));
  u.set_disabled(r.GetBool(row, col + 4));
  *u.mutable_create_time() = TimeUtil::MicrosecondsToTimestamp(r.GetInt64(row, col + 5));
  return u;
}
constexpr int kUserColumns = 6;

v1::Token TokenFromRow(const db::Result& r, int row) {
  v1::Token t;
  t.set_id(std::string(r.Get(row, 0)));
  t.set_user_id(std::string(r.Get(row, 1)));
  t.set_kind(static_cast<v1::TokenKind>(r.GetInt64(row, 2)));
  t.set_description(std::string(r.Get(row, 3)));
  for (absl::string_view p : absl::StrSplit(r.Get(row, 4), ' ', absl::SkipEmpty())) {
    t.add_permissions(std::string(p));
  }
  *t.mutable_create_time() = TimeUtil::MicrosecondsToTimestamp(r.GetInt64(row, 5));
  if (!r.IsNull(row, 6))
    *t.mutable_expire_time() = TimeUtil::MicrosecondsToTimestamp(r.GetInt64(row, 6));
  if (!r.IsNull(row, 7))
    *t.mutable_revoke_time() = TimeUtil::MicrosecondsToTimestamp(r.GetInt64(row, 7));
  if (!r.IsNull(row, 8)) t.set_parent_token_id(std::string(r.Get(row, 8)));
  t.set_worker_id(std::string(r.Get(row, 9)));
  t.set_project_id(std::string(r.Get(row, 10)));
  return t;
}
constexpr int kTokenColumns = 11;

}  // namespace

absl::StatusOr<v1::User> PgUserStore::InsertUser(const v1::User& u, absl::string_view request_id) {
  auto r = pool_->Exec(kInsertUser, {u.id(), u.name(), u.display_name(), std::to_string(u.role()),
                                     db::NullIfEmpty(request_id)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return absl::AbortedError("concurrent create with the same request_id");
  return UserFromRow(*r, 0, 0);
}

absl::StatusOr<v1::User> PgUserStore::GetUser(absl::string_view user_id) {
  auto r = pool_->Exec(kGetUser, {std::string(user_id)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return absl::NotFoundError(absl::StrCat("user '", user_id, "' not found"));
  return UserFromRow(*r, 0, 0);
}

absl::StatusOr<Page<v1::User>> PgUserStore::ListUsers(const PageRequest& page) {
  auto r = pool_->Exec(
      kListUsers,
      {page.after.size() == 1 ? std::optional<std::string>(page.after[0]) : std::nullopt,
       std::to_string(page.page_size + 1)});
  if (!r.ok()) return r.status();
  Page<v1::User> out;
  const int n = std::min(r->rows(), page.page_size);
  for (int i = 0; i < n; ++i) out.items.push_back(UserFromRow(*r, i, 0));
  if (r->rows() > page.page_size) out.last_keys = {std::string(r->Get(n - 1, 1))};
  return out;
}

absl::StatusOr<v1::User> PgUserStore::DisableUser(absl::string_view user_id) {
  auto r = pool_->Exec(kDisableUser, {std::string(user_id)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return absl::NotFoundError(absl::StrCat("user '", user_id, "' not found"));
  return UserFromRow(*r, 0, 0);
}

absl::StatusOr<int64_t> PgUserStore::CountUsers() {
  auto r = pool_->Exec(kCountUsers);
  if (!r.ok()) return r.status();
  return r->GetInt64(0, 0);
}

absl::StatusOr<v1::Token> PgUserStore::InsertToken(const v1::Token& t, absl::string_view token_hash,
                                                   absl::string_view request_id) {
  std::optional<std::string> expire;
  if (t.has_expire_time())
    expire = std::to_string(TimeUtil::TimestampToMicroseconds(t.expire_time()));
  auto r = pool_->Exec(
      kInsertToken,
      {t.id(), t.user_id(), std::string(token_hash), std::to_string(t.kind()), t.description(),
       absl::StrJoin(t.permissions(), " "), expire, db::NullIfEmpty(request_id),
       db::NullIfEmpty(t.parent_token_id()), t.worker_id(), t.project_id()});
  if (!r.ok()) {
    if (absl::IsFailedPrecondition(r.status())) {
      return absl::NotFoundError(absl::StrCat("user '", t.user_id(), "' not found"));
    }
    return r.status();
  }
  if (r->rows() == 0) return absl::AbortedError("concurrent create with the same request_id");
  return TokenFromRow(*r, 0);
}

absl::StatusOr<TokenGrant> PgUserStore::FindTokenByHash(absl::string_view token_hash) {
  auto r = pool_->Exec(kFindToken, {std::string(token_hash)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return absl::NotFoundError("token not found");
  return TokenGrant{TokenFromRow(*r, 0), UserFromRow(*r, 0, kTokenColumns),
                    r->GetBool(0, kTokenColumns + kUserColumns)};
}

absl::StatusOr<v1::Token> PgUserStore::GetToken(absl::string_view token_id) {
  auto r = pool_->Exec(kGetToken, {std::string(token_id)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return absl::NotFoundError(absl::StrCat("token '", token_id, "' not found"));
  return TokenFromRow(*r, 0);
}

absl::StatusOr<Page<v1::Token>> PgUserStore::ListTokens(absl::string_view user_id,
                                                        const PageRequest& page) {
  const bool resume = page.after.size() == 2;
  auto r =
      pool_->Exec(kListTokens, {std::string(user_id),
                                resume ? std::optional<std::string>(page.after[0]) : std::nullopt,
                                resume ? std::optional<std::string>(page.after[1]) : std::nullopt,
                                std::to_string(page.page_size + 1)});
  if (!r.ok()) return r.status();
  Page<v1::Token> out;
  const int n = std::min(r->rows(), page.page_size);
  for (int i = 0; i < n; ++i) out.items.push_back(TokenFromRow(*r, i));
  if (r->rows() > page.page_size) {
    out.last_keys = {std::string(r->Get(n - 1, 5)), std::string(r->Get(n - 1, 0))};
  }
  return out;
}

absl::StatusOr<v1::Token> PgUserStore::RevokeToken(absl::string_view token_id) {
  auto r = pool_->Exec(kRevokeToken, {std::string(token_id)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return absl::NotFoundError(absl::StrCat("token '", token_id, "' not found"));
  return TokenFromRow(*r, 0);
}

}  // namespace orchestrator::admin
