#pragma once

#include <memory>

#include "orchestrator/admin/v1/admin.grpc.pb.h"
#include "services/admin/domain/user_directory.h"
#include "services/common/executor/bounded_executor.h"

namespace orchestrator::admin {

// Wires AdminService's user and token RPCs to the UserDirectory. Pipeline
// steps (ListPipelineSteps, TriggerStep, ClearProjectState) need the job
// engine and answer UNIMPLEMENTED until it exists.
class AdminServiceImpl final : public v1::AdminService::CallbackService {
 public:
  AdminServiceImpl(std::shared_ptr<UserDirectory> directory, BoundedExecutorPtr executor)
      : directory_(std::move(directory)), executor_(std::move(executor)) {}

  grpc::ServerUnaryReactor* GetIdentity(grpc::CallbackServerContext* ctx,
                                        const v1::GetIdentityRequest* req,
                                        v1::GetIdentityResponse* resp) override;
  grpc::ServerUnaryReactor* CreateUser(grpc::CallbackServerContext* ctx,
                                       const v1::CreateUserRequest* req,
                                       v1::CreateUserResponse* resp) override;
  grpc::ServerUnaryReactor* GetUser(grpc::CallbackServerContext* ctx, const v1::GetUserRequest* req,
                                    v1::GetUserResponse* resp) override;
  grpc::ServerUnaryReactor* ListUsers(grpc::CallbackServerContext* ctx,
                                      const v1::ListUsersRequest* req,
                                      v1::ListUsersResponse* resp) override;
  grpc::ServerUnaryReactor* DisableUser(grpc::CallbackServerContext* ctx,
                                        const v1::DisableUserRequest* req,
                                        v1::DisableUserResponse* resp) override;
  grpc::ServerUnaryReactor* CreateToken(grpc::CallbackServerContext* ctx,
                                        const v1::CreateTokenRequest* req,
                                        v1::CreateTokenResponse* resp) override;
  grpc::ServerUnaryReactor* ListTokens(grpc::CallbackServerContext* ctx,
                                       const v1::ListTokensRequest* req,
                                       v1::ListTokensResponse* resp) override;
  grpc::ServerUnaryReactor* RevokeToken(grpc::CallbackServerContext* ctx,
                                        const v1::RevokeTokenRequest* req,
                                        v1::RevokeTokenResponse* resp) override;
  grpc::ServerUnaryReactor* MintWorkerToken(grpc::CallbackServerContext* ctx,
                                            const v1::MintWorkerTokenRequest* req,
                                            v1::MintWorkerTokenResponse* resp) override;
  grpc::ServerUnaryReactor* RevokeWorkerToken(grpc::CallbackServerContext* ctx,
                                              const v1::RevokeWorkerTokenRequest* req,
                                              v1::RevokeWorkerTokenResponse* resp) override;

 private:
  std::shared_ptr<UserDirectory> directory_;
  BoundedExecutorPtr executor_;
};

}  // namespace orchestrator::admin
