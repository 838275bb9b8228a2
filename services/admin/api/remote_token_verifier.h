#pragma once

#include <grpcpp/channel.h>

#include <chrono>
#include <memory>

#include "absl/strings/string_view.h"
#include "orchestrator/admin/v1/admin.grpc.pb.h"
#include "services/common/auth/token_verifier.h"

namespace orchestrator::admin {

// Verifies tokens in a process that does not host AdminService, by asking
// AdminService.GetIdentity with the token itself.
class RemoteTokenVerifier final : public TokenVerifier {
 public:
  RemoteTokenVerifier(std::unique_ptr<v1::AdminService::StubInterface> stub,
                      std::chrono::milliseconds deadline)
      : stub_(std::move(stub)), deadline_(deadline) {}

  absl::StatusOr<Principal> Verify(absl::string_view token) override;

 private:
  std::unique_ptr<v1::AdminService::StubInterface> stub_;
  std::chrono::milliseconds deadline_;
};

}  // namespace orchestrator::admin
