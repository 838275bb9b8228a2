#pragma once

#include <memory>

#include "orchestrator/admin/v1/admin.grpc.pb.h"
#include "services/admin/domain/pipeline_console.h"
#include "services/admin/domain/user_directory.h"
#include "services/common/executor/bounded_executor.h"

namespace orchestrator::admin {

// Wires AdminService's user and token RPCs to the UserDirectory, and its
// pipeline steps to the PipelineConsole. The steps call other components
// and may wait for jobs to stop: they run on an executor of their own
// (`steps_executor`), never holding up the mesh's.
class AdminServiceImpl final : public v1::AdminService::CallbackService {
 public:
  // The longest ClearProjectState waits for the running jobs it cancels.
  static constexpr absl::Duration kClearWait = absl::Seconds(10);

  AdminServiceImpl(std::shared_ptr<UserDirectory> directory, BoundedExecutorPtr executor,
                   std::shared_ptr<PipelineConsole> console, BoundedExecutorPtr steps_executor)
      : directory_(std::move(directory)),
        executor_(std::move(executor)),
        console_(std::move(console)),
        steps_executor_(std::move(steps_executor)) {}

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
  grpc::ServerUnaryReactor* ListPipelineSteps(grpc::CallbackServerContext* ctx,
                                              const v1::ListPipelineStepsRequest* req,
                                              v1::ListPipelineStepsResponse* resp) override;
  grpc::ServerUnaryReactor* TriggerStep(grpc::CallbackServerContext* ctx,
                                        const v1::TriggerStepRequest* req,
                                        v1::TriggerStepResponse* resp) override;
  grpc::ServerUnaryReactor* ClearProjectState(grpc::CallbackServerContext* ctx,
                                              const v1::ClearProjectStateRequest* req,
                                              v1::ClearProjectStateResponse* resp) override;

 private:
  std::shared_ptr<UserDirectory> directory_;
  BoundedExecutorPtr executor_;
  std::shared_ptr<PipelineConsole> console_;
  BoundedExecutorPtr steps_executor_;
};

}  // namespace orchestrator::admin
