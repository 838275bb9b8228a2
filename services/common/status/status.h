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

// True when gRPC itself could not reach the callee (its transport's own
// words: no server answered), as opposed to a callee answering UNAVAILABLE.
bool IsTransportFailure(const absl::Status& status);

// A peer's answer to a call between components: FromGrpcStatus, except that
// a peer that could not be reached is named, e.g. "AdminService (admin)
// cannot be reached: failed to connect to all addresses; ...".
absl::Status FromPeerStatus(const grpc::Status& status, absl::string_view peer);

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
