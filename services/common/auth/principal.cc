#include "services/common/auth/principal.h"

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace orchestrator {

bool PermissionMatches(absl::string_view grant, absl::string_view permission) {
  if (grant == "*") return true;
  if (absl::EndsWith(grant, ".*")) {
    absl::string_view prefix = grant.substr(0, grant.size() - 1);  // keeps the dot
    return absl::StartsWith(permission, prefix);
  }
  return grant == permission;
}

bool AnyPermissionMatches(const std::vector<std::string>& grants, absl::string_view permission) {
  for (const auto& grant : grants) {
    if (PermissionMatches(grant, permission)) return true;
  }
  return false;
}

bool IsValidPermissionPattern(absl::string_view permission) {
  if (permission == "*") return true;
  if (permission.empty() || permission.size() > 128) return false;
  std::vector<absl::string_view> words = absl::StrSplit(permission, '.');
  for (size_t i = 0; i < words.size(); ++i) {
    absl::string_view w = words[i];
    if (w == "*" && i == words.size() - 1 && i > 0) continue;
    if (w.empty() || w[0] < 'a' || w[0] > 'z') return false;
    for (char c : w) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    }
  }
  return true;
}

bool Principal::Allows(absl::string_view permission) const {
  if (!AnyPermissionMatches(role_grants, permission)) return false;
  return token_grants.empty() || AnyPermissionMatches(token_grants, permission);
}

bool CanSeeOwner(const Principal& principal, absl::string_view owner_id) {
  return principal.admin || principal.user_id == owner_id;
}

bool CanReachProject(const Principal& principal, absl::string_view project_id) {
  return principal.project_id.empty() || principal.project_id == project_id;
}

absl::StatusOr<std::string> OwnerFilter(const Principal& principal,
                                        absl::string_view requested_owner) {
  if (principal.admin) return std::string(requested_owner);
  if (!requested_owner.empty() && requested_owner != principal.user_id) {
    return absl::PermissionDeniedError(
        "owner_id: only admins may name another owner; leave it empty for your own");
  }
  return principal.user_id;
}

}  // namespace orchestrator
