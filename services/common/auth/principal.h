#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "services/common/auth/origin_claim.h"

namespace orchestrator {

// True when `permission` (e.g. "deploy.trigger") is granted by `grant`:
// an exact match, "*", or a prefix wildcard such as "deploy.*".
bool PermissionMatches(absl::string_view grant, absl::string_view permission);
bool AnyPermissionMatches(const std::vector<std::string>& grants, absl::string_view permission);

// True when `permission` is a well-formed permission or grant:
// dot-separated lowercase words, optionally ending in ".*", or "*" alone.
bool IsValidPermissionPattern(absl::string_view permission);

enum class PrincipalKind { kUser, kAgent, kMesh };

// Who is calling, as established by the authentication interceptor.
struct Principal {
  std::string user_id = {};
  std::string user_name = {};
  std::string token_id = {};
  PrincipalKind kind = PrincipalKind::kUser;
  bool admin = false;
  // What the user's role allows.
  std::vector<std::string> role_grants = {};
  // What the token is limited to; empty means no limit beyond the role.
  std::vector<std::string> token_grants = {};
  // When the token stops working.
  absl::Time expire_time = absl::InfiniteFuture();
  // For a worker's agent token: the worker it belongs to.
  std::string worker_id = {};
  // For a worker's agent token: the only project it may reach; empty = not
  // limited.
  std::string project_id = {};
  // What the call says started it (x-orchestrator-origin): the lineage of
  // the jobs it starts, never a right.
  OriginClaim origin = {};

  bool Allows(absl::string_view permission) const;
};

// Owner scoping, the same in every component: an admin may act on any
// owner's resources, everyone else only on their own. Components answer
// NOT_FOUND (never PERMISSION_DENIED) for resources the caller cannot see,
// so ids of other owners' resources leak nothing.
bool CanSeeOwner(const Principal& principal, absl::string_view owner_id);

// Project scoping, on top of owner scoping: a principal limited to one
// project (a worker's agent token) reaches no other. Components answer
// NOT_FOUND for the others, as for another owner's.
bool CanReachProject(const Principal& principal, absl::string_view project_id);

// The owner filter for a List or Watch call: for admins the requested owner
// ("" = everyone); for everyone else their own id, and PERMISSION_DENIED when
// they name any other owner (whether or not that user exists, so the answer
// leaks nothing, and never silently their own list instead).
absl::StatusOr<std::string> OwnerFilter(const Principal& principal,
                                        absl::string_view requested_owner);

}  // namespace orchestrator
