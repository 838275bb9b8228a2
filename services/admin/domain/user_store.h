#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "orchestrator/admin/v1/admin.pb.h"
#include "services/common/pagination/page_token.h"

namespace orchestrator::admin {

// A token found by its hash, with the user it acts for.
struct TokenGrant {
  v1::Token token;
  v1::User user;
  // A token it was derived from is revoked: it is, too.
  bool ancestor_revoked = false;
};

// Persistence of users and hashed tokens. NOT_FOUND for missing rows,
// ALREADY_EXISTS for a duplicate user name.
class UserStore {
 public:
  virtual ~UserStore() = default;

  // A repeated request_id returns the user the first request created.
  virtual absl::StatusOr<v1::User> InsertUser(const v1::User& user,
                                              absl::string_view request_id) = 0;
  virtual absl::StatusOr<v1::User> GetUser(absl::string_view user_id) = 0;
  virtual absl::StatusOr<Page<v1::User>> ListUsers(const PageRequest& page) = 0;
  virtual absl::StatusOr<v1::User> DisableUser(absl::string_view user_id) = 0;
  virtual absl::StatusOr<int64_t> CountUsers() = 0;

  // `token` carries id, user, kind, description, permissions, expiry.
  virtual absl::StatusOr<v1::Token> InsertToken(const v1::Token& token,
                                                absl::string_view token_hash,
                                                absl::string_view request_id) = 0;
  virtual absl::StatusOr<TokenGrant> FindTokenByHash(absl::string_view token_hash) = 0;
  virtual absl::StatusOr<v1::Token> GetToken(absl::string_view token_id) = 0;
  virtual absl::StatusOr<Page<v1::Token>> ListTokens(absl::string_view user_id,
                                                     const PageRequest& page) = 0;
  virtual absl::StatusOr<v1::Token> RevokeToken(absl::string_view token_id) = 0;
};

using UserStorePtr = std::shared_ptr<UserStore>;

}  // namespace orchestrator::admin
