#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace orchestrator {

// The one place where absl::Status and grpc::Status meet. Codes map one to
// one (both follow google.rpc.Code); messages pass through unchanged.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// The HTTP status a REST caller gets for a code (google.rpc.Code's own
// mapping: NOT_FOUND 404, ALREADY_EXISTS 409, PERMISSION_DENIED 403,
// UNAUTHENTICATED 401, UNAVAILABLE 503, ...).
int HttpStatusFor(absl::StatusCode code);

}  // namespace orchestrator
