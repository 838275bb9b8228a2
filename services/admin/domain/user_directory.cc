#include "services/admin/domain/user_directory.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/auth/mesh_identity.h"
#include "services/common/crypto/secret_box.h"
#include "services/common/validation/fields.h"
#include "services/common/validation/request_bounds.h"

namespace orchestrator::admin {
namespace {

using google::protobuf::util::TimeUtil;

constexpr int32_t kDefaultPageSize = 50;
constexpr int32_t kMaxPageSize = 500;
constexpr size_t kMaxPermissions = 64;
constexpr int64_t kMaxTokenTtlSeconds = 366 * 24 * 3600;

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(t));
}

absl::Status ValidateUserName(absl::string_view field, absl::string_view name) {
  if (name.size() < 3 || name.size() > 63)
    return InvalidField(field, "must be 3 to 63 characters long");
  if (name.front() < 'a' || name.front() > 'z') {
    return InvalidField(field, "must start with a lowercase letter");
  }
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')) {
      return InvalidField(field, "may contain only lowercase letters, digits, '-', '_' and '.'");
    }
  }
  return absl::OkStatus();
}

std::string NewTokenValue() { return absl::StrCat(kTokenPrefix, RandomUrlSafe(32)); }

}  // namespace

std::vector<std::string> RoleGrants(v1::Role role) {
  if (role == v1::ROLE_ADMIN) return {"*"};
  if (role == v1::ROLE_USER) {
    return {"project.*",        "job.*",
            "session.*",        "agent.*",
            "scaffold.*",       "engineering.*",
            "deploy.*",         "infra.server.list",
            "infra.server.get", "infra.allocation.*",
            "diagnose.*",       "admin.token.*",
            "runner.connect"};
  }
  return {};
}

Principal PrincipalFor(const v1::User& user, const v1::Token& token,
                       std::vector<std::string> role_grants) {
  Principal p;
  p.user_id = user.id();
  p.user_name = user.name();
  p.token_id = token.id();
  p.admin = user.role() == v1::ROLE_ADMIN;
  // No token is ever the mesh: only the mesh credential is (MeshPrincipal).
  p.kind = token.kind() == v1::TOKEN_KIND_AGENT ? PrincipalKind::kAgent : PrincipalKind::kUser;
  p.role_grants = std::move(role_grants);
  p.token_grants.assign(token.permissions().begin(), token.permissions().end());
  if (token.has_expire_time()) p.expire_time = ToTime(token.expire_time());
  p.worker_id = token.worker_id();
  p.project_id = token.project_id();
  return p;
}

absl::StatusOr<Principal> UserDirectory::Verify(absl::string_view token) {
  constexpr auto kInvalid = "invalid token: unknown, revoked or expired";
  if (!absl::StartsWith(token, kTokenPrefix) || token.size() > 256) {
    return absl::UnauthenticatedError(kInvalid);
  }
  auto grant = store_->FindTokenByHash(HashToken(token));
  if (absl::IsNotFound(grant.status())) return absl::UnauthenticatedError(kInvalid);
  if (!grant.ok()) return grant.status();
  const v1::Token& t = grant->token;
  if (t.has_revoke_time() || grant->ancestor_revoked) {
    return absl::UnauthenticatedError("token revoked");
  }
  if (t.has_expire_time() && ToTime(t.expire_time()) <= clock_()) {
    return absl::UnauthenticatedError("token expired; ask for a new one");
  }
  if (grant->user.disabled()) return absl::UnauthenticatedError("user disabled");

  return PrincipalFor(grant->user, t, RoleGrants(grant->user.role()));
}

absl::StatusOr<bool> UserDirectory::Bootstrap(
    const std::function<absl::Status(const std::string&)>& deliver) {
  auto count = store_->CountUsers();
  if (!count.ok()) return count.status();
  if (*count > 0) return false;
  const std::string value = NewTokenValue();
  if (auto s = deliver(value); !s.ok()) return s;
  v1::User admin;
  admin.set_id(NewId("usr_"));
  admin.set_name("admin");
  admin.set_display_name("Administrator");
  admin.set_role(v1::ROLE_ADMIN);
  auto user = store_->InsertUser(admin, "bootstrap");
  if (absl::IsAlreadyExists(user.status())) return false;  // a replica bootstrapped first
  if (!user.ok()) return user.status();
  v1::Token token;
  token.set_id(NewId("tok_"));
  token.set_user_id(user->id());
  token.set_kind(v1::TOKEN_KIND_USER);
  token.set_description("bootstrap admin token");
  auto stored = store_->InsertToken(token, HashToken(value), "bootstrap");
  if (!stored.ok()) return stored.status();
  return stored->id() == token.id();
}

absl::StatusOr<v1::User> UserDirectory::VisibleUser(const Principal& caller,
                                                    absl::string_view field,
                                                    absl::string_view user_id) {
  if (auto s = RequireNonEmpty(field, user_id); !s.ok()) return s;
  if (auto s = CheckToken(field, user_id); !s.ok()) return s;
  if (!CanSeeOwner(caller, user_id)) {
    return absl::NotFoundError(absl::StrCat("user '", user_id, "' not found"));
  }
  return store_->GetUser(user_id);
}

absl::StatusOr<v1::GetIdentityResponse> UserDirectory::GetIdentity(const Principal& caller) {
  auto user = store_->GetUser(caller.user_id);
  if (!user.ok()) return user.status();
  auto token = store_->GetToken(caller.token_id);
  if (!token.ok()) return token.status();
  v1::GetIdentityResponse out;
  *out.mutable_user() = std::move(*user);
  *out.mutable_token() = std::move(*token);
  for (const auto& g : caller.role_grants) out.add_role_permissions(g);
  return out;
}

absl::StatusOr<v1::User> UserDirectory::CreateUser(const Principal&,
                                                   const v1::CreateUserRequest& req) {
  const v1::User& in = req.user();
  if (auto s = ValidateUserName("user.name", in.name()); !s.ok()) return s;
  if (auto s = CheckText("user.display_name", in.display_name(), 200); !s.ok()) return s;
  if (!v1::Role_IsValid(in.role())) {
    return InvalidField("user.role", absl::StrCat("unknown role ", in.role()));
  }
  if (auto s = CheckToken("request_id", req.request_id()); !s.ok()) return s;
  v1::User user;
  user.set_id(NewId("usr_"));
  user.set_name(in.name());
  user.set_display_name(in.display_name());
  user.set_role(in.role() == v1::ROLE_UNSPECIFIED ? v1::ROLE_USER : in.role());
  auto created = store_->InsertUser(user, req.request_id());
  if (absl::IsAlreadyExists(created.status())) {
    return absl::AlreadyExistsError(absl::StrCat("user.name: '", in.name(), "' is taken"));
  }
  return created;
}

absl::StatusOr<v1::User> UserDirectory::GetUser(const Principal& caller,
                                                const v1::GetUserRequest& req) {
  return VisibleUser(caller, "user_id", req.user_id());
}

absl::StatusOr<v1::ListUsersResponse> UserDirectory::ListUsers(const Principal&,
                                                               const v1::ListUsersRequest& req) {
  auto page =
      ParsePageRequest(req.page_size(), req.page_token(), "users", kDefaultPageSize, kMaxPageSize);
  if (!page.ok()) return page.status();
  auto rows = store_->ListUsers(*page);
  if (!rows.ok()) return rows.status();
  v1::ListUsersResponse out;
  for (auto& u : rows->items) *out.add_users() = std::move(u);
  if (!rows->last_keys.empty()) out.set_next_page_token(MakePageToken("users", rows->last_keys));
  return out;
}

absl::StatusOr<v1::User> UserDirectory::DisableUser(const Principal& caller,
                                                    const v1::DisableUserRequest& req) {
  if (auto s = CheckToken("request_id", req.request_id()); !s.ok()) return s;
  auto user = VisibleUser(caller, "user_id", req.user_id());
  if (!user.ok()) return user.status();
  if (user->id() == caller.user_id) {
    return absl::FailedPreconditionError("you cannot disable yourself; ask another admin");
  }
  auto disabled = store_->DisableUser(req.user_id());
  if (disabled.ok()) Changed();
  return disabled;
}

absl::StatusOr<v1::CreateTokenResponse> UserDirectory::CreateToken(
    const Principal& caller, const v1::CreateTokenRequest& req) {
  return IssueToken(caller, req, "", "");
}

absl::StatusOr<v1::CreateTokenResponse> UserDirectory::IssueToken(const Principal& caller,
                                                                  const v1::CreateTokenRequest& req,
                                                                  absl::string_view worker_id,
                                                                  absl::string_view project_id) {
  // A token never holds more than the token that creates it: an agent's
  // token creates none; grants are a subset of the creator's; the expiry no
  // later than the creator's.
  if (caller.kind == PrincipalKind::kAgent) {
    return absl::PermissionDeniedError(
        "an agent's token cannot create tokens; ask the user to create one");
  }
  if (!v1::TokenKind_IsValid(req.kind())) {
    return InvalidField("kind", absl::StrCat("unknown token kind ", req.kind()));
  }
  if (req.kind() == v1::TOKEN_KIND_MESH) {
    return InvalidField("kind",
                        "TOKEN_KIND_MESH is retired: the components prove they are the mesh with "
                        "the mesh credential (--mesh_credential_file), never with a token");
  }
  if (auto s = CheckText("description", req.description(), 200); !s.ok()) return s;
  if (req.permissions_size() > static_cast<int>(kMaxPermissions)) {
    return InvalidField("permissions", absl::StrCat("at most ", kMaxPermissions, " are allowed"));
  }
  for (const auto& p : req.permissions()) {
    if (!IsValidPermissionPattern(p)) {
      return InvalidField("permissions", absl::StrCat("'", Truncated(p, 128),
                                                      "' is not a permission such as "
                                                      "'project.get' or 'deploy.*'"));
    }
    // Allows() holds `p` against the role and the token's own grants alike;
    // a wildcard is held only by a grant that covers all of it.
    if (!caller.Allows(p)) {
      return absl::PermissionDeniedError(
          absl::StrCat("permissions: you cannot grant '", p, "', which your token does not hold"));
    }
  }
  absl::Time expire = caller.expire_time;
  if (req.has_ttl()) {
    const int64_t seconds = req.ttl().seconds();
    const int32_t nanos = req.ttl().nanos();
    if (seconds < 0 || nanos < 0 || nanos > 999999999 || (seconds == 0 && nanos == 0)) {
      return InvalidField("ttl", "must be positive");
    }
    if (seconds > kMaxTokenTtlSeconds) {
      return InvalidField("ttl", absl::StrCat("at most ", kMaxTokenTtlSeconds, "s is allowed"));
    }
    expire = clock_() + absl::Seconds(seconds) + absl::Nanoseconds(nanos);
    if (expire > caller.expire_time) {
      return InvalidField(
          "ttl", absl::StrCat("your token expires at ", absl::FormatTime(caller.expire_time),
                              "; a token it creates cannot outlive it"));
    }
  }
  // Nor reaches more projects: a creator limited to one passes the limit on.
  std::string project(project_id);
  if (!caller.project_id.empty()) {
    if (!project.empty() && project != caller.project_id) {
      return absl::PermissionDeniedError(
          "project_id: the creating token is limited to another project");
    }
    project = caller.project_id;
  }
  if (auto s = CheckToken("request_id", req.request_id()); !s.ok()) return s;
  auto user = VisibleUser(caller, "user_id", req.user_id());
  if (!user.ok()) return user.status();
  if (user->disabled()) return absl::FailedPreconditionError("user_id: the user is disabled");

  v1::Token token;
  token.set_id(NewId("tok_"));
  token.set_user_id(user->id());
  token.set_kind(req.kind() == v1::TOKEN_KIND_UNSPECIFIED ? v1::TOKEN_KIND_USER : req.kind());
  token.set_description(req.description());
  if (req.permissions_size() > 0) {
    *token.mutable_permissions() = req.permissions();
  } else {
    for (const auto& g : caller.token_grants) token.add_permissions(g);
  }
  if (expire != absl::InfiniteFuture()) {
    *token.mutable_expire_time() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(expire));
  }
  token.set_parent_token_id(caller.token_id);
  token.set_worker_id(std::string(worker_id));
  token.set_project_id(project);
  std::string value = NewTokenValue();
  auto stored = store_->InsertToken(token, HashToken(value), req.request_id());
  if (!stored.ok()) return stored.status();
  if (stored->id() != token.id()) {
    return absl::AlreadyExistsError(
        "request_id: this token was already created; its value was shown once and cannot be "
        "shown again");
  }
  v1::CreateTokenResponse out;
  *out.mutable_token() = std::move(*stored);
  out.set_value(value);
  return out;
}

absl::StatusOr<v1::ListTokensResponse> UserDirectory::ListTokens(const Principal& caller,
                                                                 const v1::ListTokensRequest& req) {
  auto user = VisibleUser(caller, "user_id", req.user_id());
  if (!user.ok()) return user.status();
  const std::string filters = absl::StrCat("tokens=", req.user_id());
  auto page =
      ParsePageRequest(req.page_size(), req.page_token(), filters, kDefaultPageSize, kMaxPageSize);
  if (!page.ok()) return page.status();
  auto rows = store_->ListTokens(req.user_id(), *page);
  if (!rows.ok()) return rows.status();
  v1::ListTokensResponse out;
  for (auto& t : rows->items) *out.add_tokens() = std::move(t);
  if (!rows->last_keys.empty()) out.set_next_page_token(MakePageToken(filters, rows->last_keys));
  return out;
}

absl::StatusOr<v1::Token> UserDirectory::RevokeToken(const Principal& caller,
                                                     const v1::RevokeTokenRequest& req) {
  if (auto s = RequireNonEmpty("token_id", req.token_id()); !s.ok()) return s;
  if (auto s = CheckToken("token_id", req.token_id()); !s.ok()) return s;
  if (auto s = CheckToken("request_id", req.request_id()); !s.ok()) return s;
  auto token = store_->GetToken(req.token_id());
  if (token.ok() && !CanSeeOwner(caller, token->user_id())) token = absl::NotFoundError("");
  if (absl::IsNotFound(token.status())) {
    return absl::NotFoundError(absl::StrCat("token '", req.token_id(), "' not found"));
  }
  if (!token.ok()) return token.status();
  auto revoked = store_->RevokeToken(req.token_id());
  if (revoked.ok()) Changed();
  return revoked;
}

absl::StatusOr<v1::MintWorkerTokenResponse> UserDirectory::MintWorkerToken(
    const Principal& caller, const v1::MintWorkerTokenRequest& req) {
  // The interceptor lets only the mesh call this; checked again here so no
  // other path can reach it.
  if (!IsMesh(caller)) {
    return absl::PermissionDeniedError("only the mesh mints workers' tokens");
  }
  for (const auto& [field, value] :
       {std::pair<absl::string_view, const std::string&>{"user_id", req.user_id()},
        {"worker_id", req.worker_id()}}) {
    if (auto s = RequireNonEmpty(field, value); !s.ok()) return s;
    if (auto s = CheckToken(field, value); !s.ok()) return s;
  }
  if (auto s = CheckToken("parent_token_id", req.parent_token_id()); !s.ok()) return s;
  if (auto s = CheckToken("project_id", req.project_id()); !s.ok()) return s;
  auto user = store_->GetUser(req.user_id());
  if (!user.ok()) return user.status();
  if (user->disabled()) return absl::FailedPreconditionError("user_id: the user is disabled");
  // The worker's token is created as its parent token would create it: no
  // more grants, no later expiry, revoked with it.
  v1::Token parent;
  if (!req.parent_token_id().empty()) {
    auto p = store_->GetToken(req.parent_token_id());
    if (absl::IsNotFound(p.status())) {
      return absl::NotFoundError(
          absl::StrCat("parent_token_id: token '", req.parent_token_id(), "' not found"));
    }
    if (!p.ok()) return p.status();
    if (p->user_id() != user->id()) {
      return absl::InvalidArgumentError("parent_token_id: the token belongs to another user");
    }
    if (p->has_revoke_time()) {
      return absl::FailedPreconditionError("parent_token_id: the token is revoked");
    }
    parent = *std::move(p);
  }
  Principal creator = PrincipalFor(*user, parent, RoleGrants(user->role()));
  if (req.parent_token_id().empty()) creator.kind = PrincipalKind::kUser;
  v1::CreateTokenRequest create;
  create.set_user_id(user->id());
  create.set_kind(v1::TOKEN_KIND_AGENT);
  create.set_description(absl::StrCat("worker ", req.worker_id()));
  for (const auto& p : req.permissions()) {
    // Started by a token: what that token holds, or refused (as CreateToken
    // refuses). Started by the mesh for the user (a PO session): what the
    // user's role allows of it, since the profile is the same for every user
    // (an admin's PO may list servers, a user's may not).
    if (req.parent_token_id().empty() && IsValidPermissionPattern(p) && !creator.Allows(p))
      continue;
    create.add_permissions(p);
  }
  if (create.permissions().empty() && req.permissions_size() > 0) {
    return absl::PermissionDeniedError("permissions: the user's role allows none of them");
  }
  auto issued = IssueToken(creator, create, req.worker_id(), req.project_id());
  if (!issued.ok()) return issued.status();
  v1::MintWorkerTokenResponse out;
  *out.mutable_token() = std::move(*issued->mutable_token());
  out.set_value(std::move(*issued->mutable_value()));
  return out;
}

absl::StatusOr<v1::Token> UserDirectory::RevokeWorkerToken(
    const Principal& caller, const v1::RevokeWorkerTokenRequest& req) {
  if (!IsMesh(caller)) {
    return absl::PermissionDeniedError("only the mesh revokes workers' tokens");
  }
  v1::RevokeTokenRequest revoke;
  revoke.set_token_id(req.token_id());
  return RevokeToken(MeshPrincipal(), revoke);
}

}  // namespace orchestrator::admin
