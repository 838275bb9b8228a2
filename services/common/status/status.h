#pragma once

#include <grpcpp/support/status.h>

#include <chrono>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace orchestrator {

// The one place where absl::Status and grpc::Status meet. Codes map one to
// one (both follow google.rpc.Code). Messages pass through, cut to
// kMaxStatusMessageBytes so no error can echo unbounded input. A retry
// delay (RetryLater) travels as a google.rpc.RetryInfo detail.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

inline constexpr size_t kMaxStatusMessageBytes = 1024;

// RESOURCE_EXHAUSTED that tells the caller when to retry.
absl::Status RetryLater(absl::string_view message, std::chrono::milliseconds delay);
// The retry delay a status carries (from RetryLater, or a grpc::Status's
// google.rpc.RetryInfo detail), if any.
std::optional<std::chrono::milliseconds> RetryDelayOf(const absl::Status& status);
std::optional<std::chrono::milliseconds> RetryDelayOf(const grpc::Status& status);

// The HTTP status a REST caller gets for a code (google.rpc.Code's own
// mapping: NOT_FOUND 404, ALREADY_EXISTS 409, PERMISSION_DENIED 403,
// UNAUTHENTICATED 401, UNAVAILABLE 503, ...).
int HttpStatusFor(absl::StatusCode code);

}  // namespace orchestrator
