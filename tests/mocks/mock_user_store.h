#pragma once

#include "gmock/gmock.h"
#include "services/admin/domain/user_store.h"

namespace orchestrator::admin {

class MockUserStore : public UserStore {
 public:
  MOCK_METHOD(absl::StatusOr<v1::User>, InsertUser, (const v1::User&, absl::string_view),
              (override));
  MOCK_METHOD(absl::StatusOr<v1::User>, GetUser, (absl::string_view), (override));
  MOCK_METHOD(absl::StatusOr<Page<v1::User>>, ListUsers, (const PageRequest&), (override));
  MOCK_METHOD(absl::StatusOr<v1::User>, DisableUser, (absl::string_view), (override));
  MOCK_METHOD(absl::StatusOr<int64_t>, CountUsers, (), (override));
  MOCK_METHOD(absl::StatusOr<v1::Token>, InsertToken,
              (const v1::Token&, absl::string_view, absl::string_view), (override));
  MOCK_METHOD(absl::StatusOr<TokenGrant>, FindTokenByHash, (absl::string_view), (override));
  MOCK_METHOD(absl::StatusOr<v1::Token>, GetToken, (absl::string_view), (override));
  MOCK_METHOD(absl::StatusOr<Page<v1::Token>>, ListTokens, (absl::string_view, const PageRequest&),
              (override));
  MOCK_METHOD(absl::StatusOr<v1::Token>, RevokeToken, (absl::string_view), (override));
};

}  // namespace orchestrator::admin
