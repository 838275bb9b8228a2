#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "orchestrator/admin/v1/admin.pb.h"
#include "services/admin/domain/user_store.h"
#include "services/common/auth/principal.h"
#include "services/common/auth/token_verifier.h"

namespace orchestrator::admin {

// What each role grants. Admins: everything. Users: everything on their own
// resources except administration, but including their own tokens.
std::vector<std::string> RoleGrants(v1::Role role);

// The principal a token acts as: its user, its role's grants and its own.
Principal PrincipalFor(const v1::User& user, const v1::Token& token,
                       std::vector<std::string> role_grants);

// Users and tokens: the source of truth for authentication. Token values are
// generated here, returned once, and stored only as hashes.
class UserDirectory final : public TokenVerifier {
 public:
  using Clock = std::function<absl::Time()>;
  explicit UserDirectory(UserStorePtr store, Clock clock = &absl::Now)
      : store_(std::move(store)), clock_(std::move(clock)) {}

  // Called after a revocation or a disabled user, so caches forget at once.
  void OnCredentialsChanged(std::function<void()> callback) { changed_ = std::move(callback); }

  // TokenVerifier.
  absl::StatusOr<Principal> Verify(absl::string_view token) override;

  // On an install without users: creates user "admin" with ROLE_ADMIN and a
  // fresh token for it, handing the token to `deliver` *before* its hash is
  // stored, so a token that could not be delivered is never the only one.
  // Returns false when users already exist (nothing is delivered).
  absl::StatusOr<bool> Bootstrap(const std::function<absl::Status(const std::string&)>& deliver);

  absl::StatusOr<v1::GetIdentityResponse> GetIdentity(const Principal& caller);
  absl::StatusOr<v1::User> CreateUser(const Principal& caller, const v1::CreateUserRequest& req);
  absl::StatusOr<v1::User> GetUser(const Principal& caller, const v1::GetUserRequest& req);
  absl::StatusOr<v1::ListUsersResponse> ListUsers(const Principal& caller,
                                                  const v1::ListUsersRequest& req);
  absl::StatusOr<v1::User> DisableUser(const Principal& caller, const v1::DisableUserRequest& req);
  absl::StatusOr<v1::CreateTokenResponse> CreateToken(const Principal& caller,
                                                      const v1::CreateTokenRequest& req);
  absl::StatusOr<v1::ListTokensResponse> ListTokens(const Principal& caller,
                                                    const v1::ListTokensRequest& req);
  absl::StatusOr<v1::Token> RevokeToken(const Principal& caller, const v1::RevokeTokenRequest& req);

  // Mesh only: a worker's agent token, created as if by its parent token
  // (or, without one, by the user's role), so it holds no more than that,
  // limited to the worker's project when the request names one.
  absl::StatusOr<v1::MintWorkerTokenResponse> MintWorkerToken(
      const Principal& caller, const v1::MintWorkerTokenRequest& req);
  absl::StatusOr<v1::Token> RevokeWorkerToken(const Principal& caller,
                                              const v1::RevokeWorkerTokenRequest& req);

 private:
  absl::StatusOr<v1::CreateTokenResponse> IssueToken(const Principal& caller,
                                                     const v1::CreateTokenRequest& req,
                                                     absl::string_view worker_id,
                                                     absl::string_view project_id);
  absl::StatusOr<v1::User> VisibleUser(const Principal& caller, absl::string_view field,
                                       absl::string_view user_id);
  void Changed() {
    if (changed_) changed_();
  }

  UserStorePtr store_;
  Clock clock_;
  std::function<void()> changed_;
};

// The prefix of every token value, so leaked tokens are easy to spot.
inline constexpr absl::string_view kTokenPrefix = "orc_";

}  // namespace orchestrator::admin
