#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <memory>

#include "services/common/auth/token_verifier.h"
#include "services/common/rpc/method_access.h"

namespace orchestrator {

// The mesh's one per-call mechanism, installed on every server:
//  - request id: read from `x-request-id` or generated, echoed back;
//  - authentication: every method declared in our contracts needs
//    `authorization: Bearer <token>` (health and reflection need none);
//  - authorization: the permission the contract declares for the method;
//  - one log line per completed RPC: svc, rpc, request_id, code, latency_ms.
// A call refused here ends with the refusal whatever its handler does.
class RpcInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  RpcInterceptorFactory(std::shared_ptr<const MethodAccessTable> access, TokenVerifierPtr verifier)
      : access_(std::move(access)), verifier_(std::move(verifier)) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  std::shared_ptr<const MethodAccessTable> access_;
  TokenVerifierPtr verifier_;
};

}  // namespace orchestrator
