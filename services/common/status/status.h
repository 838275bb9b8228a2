#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace orchestrator {

// The one place where absl::Status and grpc::Status meet. Codes map one to
// one (both follow google.rpc.Code); messages pass through unchanged.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace orchestrator
