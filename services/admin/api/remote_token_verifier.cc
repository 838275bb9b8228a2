#include "services/admin/api/remote_token_verifier.h"

#include <grpcpp/client_context.h>

#include "absl/strings/str_cat.h"
#include "services/admin/domain/user_directory.h"
#include "services/common/status/status.h"

namespace orchestrator::admin {

absl::StatusOr<Principal> RemoteTokenVerifier::Verify(absl::string_view token) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline_);
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  v1::GetIdentityResponse identity;
  grpc::Status status = stub_->GetIdentity(&ctx, v1::GetIdentityRequest(), &identity);
  if (!status.ok()) {
    absl::Status s = FromPeerStatus(status, "AdminService (admin), which verifies tokens,");
    if (absl::IsUnauthenticated(s) || absl::IsUnavailable(s)) return s;
    return absl::UnavailableError(
        absl::StrCat("verifying the token with AdminService: ", s.message()));
  }
  return PrincipalFor(identity.user(), identity.token(),
                      {identity.role_permissions().begin(), identity.role_permissions().end()});
}

}  // namespace orchestrator::admin
