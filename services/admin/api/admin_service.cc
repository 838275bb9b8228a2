#include "services/admin/api/admin_service.h"

#include "services/common/rpc/serve_unary.h"

namespace orchestrator::admin {
grpc::ServerUnaryReactor* AdminServiceImpl::GetIdentity(grpc::CallbackServerContext* ctx,
                                                        const v1::GetIdentityRequest*,
                                                        v1::GetIdentityResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, resp](const Principal& caller) {
    return FillResponse(directory_->GetIdentity(caller),
                        [resp](v1::GetIdentityResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::CreateUser(grpc::CallbackServerContext* ctx,
                                                       const v1::CreateUserRequest* req,
                                                       v1::CreateUserResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(directory_->CreateUser(caller, *req),
                        [resp](v1::User u) { *resp->mutable_user() = std::move(u); });
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetUser(grpc::CallbackServerContext* ctx,
                                                    const v1::GetUserRequest* req,
                                                    v1::GetUserResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(directory_->GetUser(caller, *req),
                        [resp](v1::User u) { *resp->mutable_user() = std::move(u); });
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListUsers(grpc::CallbackServerContext* ctx,
                                                      const v1::ListUsersRequest* req,
                                                      v1::ListUsersResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(directory_->ListUsers(caller, *req),
                        [resp](v1::ListUsersResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::DisableUser(grpc::CallbackServerContext* ctx,
                                                        const v1::DisableUserRequest* req,
                                                        v1::DisableUserResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(directory_->DisableUser(caller, *req),
                        [resp](v1::User u) { *resp->mutable_user() = std::move(u); });
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::CreateToken(grpc::CallbackServerContext* ctx,
                                                        const v1::CreateTokenRequest* req,
                                                        v1::CreateTokenResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(directory_->CreateToken(caller, *req),
                        [resp](v1::CreateTokenResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListTokens(grpc::CallbackServerContext* ctx,
                                                       const v1::ListTokensRequest* req,
                                                       v1::ListTokensResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(directory_->ListTokens(caller, *req),
                        [resp](v1::ListTokensResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::RevokeToken(grpc::CallbackServerContext* ctx,
                                                        const v1::RevokeTokenRequest* req,
                                                        v1::RevokeTokenResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(directory_->RevokeToken(caller, *req),
                        [resp](v1::Token t) { *resp->mutable_token() = std::move(t); });
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::MintWorkerToken(grpc::CallbackServerContext* ctx,
                                                            const v1::MintWorkerTokenRequest* req,
                                                            v1::MintWorkerTokenResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(directory_->MintWorkerToken(caller, *req),
                        [resp](v1::MintWorkerTokenResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::RevokeWorkerToken(
    grpc::CallbackServerContext* ctx, const v1::RevokeWorkerTokenRequest* req,
    v1::RevokeWorkerTokenResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(directory_->RevokeWorkerToken(caller, *req),
                        [resp](v1::Token t) { *resp->mutable_token() = std::move(t); });
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListPipelineSteps(grpc::CallbackServerContext* ctx,
                                                              const v1::ListPipelineStepsRequest*,
                                                              v1::ListPipelineStepsResponse* resp) {
  return ServeUnary(ctx, *steps_executor_, [this, resp](const Principal& caller) {
    return FillResponse(console_->ListSteps(caller),
                        [resp](v1::ListPipelineStepsResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::TriggerStep(grpc::CallbackServerContext* ctx,
                                                        const v1::TriggerStepRequest* req,
                                                        v1::TriggerStepResponse* resp) {
  return ServeUnary(ctx, *steps_executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(console_->TriggerStep(caller, *req),
                        [resp](jobs::v1::Job j) { *resp->mutable_job() = std::move(j); });
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ClearProjectState(
    grpc::CallbackServerContext* ctx, const v1::ClearProjectStateRequest* req,
    v1::ClearProjectStateResponse* resp) {
  // The wait ends a second before the caller's deadline, so it hears the
  // outcome.
  absl::Time wait_until = absl::Now() + kClearWait;
  const auto client_deadline = ctx->deadline();
  if (client_deadline != std::chrono::system_clock::time_point::max()) {
    wait_until = std::min(wait_until, absl::FromChrono(client_deadline) - absl::Seconds(1));
  }
  return ServeUnary(ctx, *steps_executor_, [this, req, resp, wait_until](const Principal& caller) {
    return FillResponse(console_->ClearProjectState(caller, *req, wait_until),
                        [resp](v1::ClearProjectStateResponse r) { *resp = std::move(r); });
  });
}

}  // namespace orchestrator::admin
