#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <memory>

#include "services/common/auth/mesh_identity.h"
#include "services/common/auth/token_verifier.h"
#include "services/common/rpc/method_access.h"
#include "services/common/rpc/rate_limiter.h"

namespace orchestrator {

// How often callers may call, per token and per user (each off when its
// rate is 0). The mesh's own credential is never limited.
struct CallRateLimits {
  RateLimit per_token;
  RateLimit per_user;
};

// The mesh's one per-call mechanism, installed on every server:
//  - request id: read from `x-request-id` or generated, echoed back;
//  - authentication: every method declared in our contracts needs
//    `authorization: Bearer <token>` (health and reflection need none);
//  - mesh identity: the mesh credential is the mesh itself; with it alone
//    the caller may act for the user named in `x-orchestrator-act-for` and
//    call the methods the contract declares mesh_only (PERMISSION_DENIED
//    for any other caller, whatever its grants);
//  - authorization: the permission the contract declares for the method;
//  - rate limits per token and per user: RESOURCE_EXHAUSTED with a
//    google.rpc.RetryInfo detail;
//  - request bounds: every request message checked against the contract's
//    declared bounds before the handler sees it (INVALID_ARGUMENT naming the
//    field); a request that cannot be parsed is INVALID_ARGUMENT too;
//  - one log line per completed RPC: svc, rpc, request_id, user, code,
//    latency_ms (the user also on refusals: an audit trail of who tried what).
// A call refused here ends with the refusal whatever its handler does.
class RpcInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  RpcInterceptorFactory(std::shared_ptr<const MethodAccessTable> access, TokenVerifierPtr verifier,
                        MeshCredentialPtr mesh, CallRateLimits limits = {})
      : access_(std::move(access)),
        verifier_(std::move(verifier)),
        mesh_(std::move(mesh)),
        per_token_(std::make_shared<RateLimiter>(limits.per_token)),
        per_user_(std::make_shared<RateLimiter>(limits.per_user)) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  std::shared_ptr<const MethodAccessTable> access_;
  TokenVerifierPtr verifier_;
  MeshCredentialPtr mesh_;  // null: no caller is the mesh
  std::shared_ptr<RateLimiter> per_token_;
  std::shared_ptr<RateLimiter> per_user_;
};

}  // namespace orchestrator
