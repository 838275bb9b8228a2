#include "services/common/status/status.h"

#include "gtest/gtest.h"

namespace orchestrator {
namespace {

TEST(StatusMapping, EveryCanonicalCodeKeepsItsCodeAndMessageBothWays) {
  for (int code = 1; code <= 16; ++code) {
    absl::Status in(static_cast<absl::StatusCode>(code), "project.name: is required");
    grpc::Status wire = ToGrpcStatus(in);
    EXPECT_EQ(static_cast<int>(wire.error_code()), code);
    EXPECT_EQ(wire.error_message(), "project.name: is required");
    EXPECT_EQ(FromGrpcStatus(wire), in);
  }
}

TEST(StatusMapping, OkStaysOk) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

TEST(StatusMapping, DistinctFailuresAreNotCollapsed) {
  EXPECT_EQ(ToGrpcStatus(absl::NotFoundError("x")).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ToGrpcStatus(absl::PermissionDeniedError("x")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ToGrpcStatus(absl::UnavailableError("x")).error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace orchestrator
