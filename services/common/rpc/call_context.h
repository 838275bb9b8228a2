#pragma once

#include <grpcpp/server_context.h>

#include <string>

#include "absl/status/statusor.h"
#include "services/common/auth/principal.h"

namespace orchestrator {

// What the RPC interceptor established about a call, for its handler.
struct CallInfo {
  std::string method;      // "/pkg.Service/Method"
  std::string request_id;  // from x-request-id, or generated
  absl::StatusOr<Principal> caller = absl::UnauthenticatedError("not authenticated");
};

// The authenticated caller of a call in flight; the handler's only way to
// learn who calls. UNAUTHENTICATED / PERMISSION_DENIED exactly as the
// interceptor decided.
absl::StatusOr<Principal> CallerOf(const grpc::ServerContextBase* context);

namespace internal {
void RegisterCall(const grpc::ServerContextBase* context, CallInfo info);
void UnregisterCall(const grpc::ServerContextBase* context);
// A request of the call was refused after authentication (out of bounds):
// from now on CallerOf answers `refusal`.
void RefuseCall(const grpc::ServerContextBase* context, absl::Status refusal);
}  // namespace internal

}  // namespace orchestrator
