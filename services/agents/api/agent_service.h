#pragma once

#include <memory>

#include "orchestrator/agents/v1/agents.grpc.pb.h"
#include "orchestrator/agents/v1/runner.grpc.pb.h"
#include "services/agents/domain/workers.h"
#include "services/common/executor/bounded_executor.h"
#include "services/common/peers/project_visibility.h"

namespace orchestrator::agents {

// AgentService over the spawner: unary calls on the executor, RunTask,
// RunCommand and WatchWorker as queued server streams.
class AgentServiceImpl final : public v1::AgentService::CallbackService {
 public:
  // `projects` checks a worker's config.project_id as the caller; null
  // refuses project ids.
  AgentServiceImpl(std::shared_ptr<Workers> spawner, BoundedExecutorPtr executor,
                   ProjectVisibilityPtr projects = nullptr)
      : spawner_(std::move(spawner)),
        executor_(std::move(executor)),
        projects_(std::move(projects)) {}

  grpc::ServerUnaryReactor* StartWorker(grpc::CallbackServerContext* ctx,
                                        const v1::StartWorkerRequest* req,
                                        v1::StartWorkerResponse* resp) override;
  grpc::ServerWriteReactor<v1::RunTaskResponse>* RunTask(grpc::CallbackServerContext* ctx,
                                                         const v1::RunTaskRequest* req) override;
  grpc::ServerWriteReactor<v1::RunCommandResponse>* RunCommand(
      grpc::CallbackServerContext* ctx, const v1::RunCommandRequest* req) override;
  grpc::ServerUnaryReactor* PauseWorker(grpc::CallbackServerContext* ctx,
                                        const v1::PauseWorkerRequest* req,
                                        v1::PauseWorkerResponse* resp) override;
  grpc::ServerUnaryReactor* ResumeWorker(grpc::CallbackServerContext* ctx,
                                         const v1::ResumeWorkerRequest* req,
                                         v1::ResumeWorkerResponse* resp) override;
  grpc::ServerUnaryReactor* StopWorker(grpc::CallbackServerContext* ctx,
                                       const v1::StopWorkerRequest* req,
                                       v1::StopWorkerResponse* resp) override;
  grpc::ServerUnaryReactor* GetWorker(grpc::CallbackServerContext* ctx,
                                      const v1::GetWorkerRequest* req,
                                      v1::GetWorkerResponse* resp) override;
  grpc::ServerUnaryReactor* ListWorkers(grpc::CallbackServerContext* ctx,
                                        const v1::ListWorkersRequest* req,
                                        v1::ListWorkersResponse* resp) override;
  grpc::ServerWriteReactor<v1::WatchWorkerResponse>* WatchWorker(
      grpc::CallbackServerContext* ctx, const v1::WatchWorkerRequest* req) override;
  grpc::ServerUnaryReactor* FinishTask(grpc::CallbackServerContext* ctx,
                                       const v1::FinishTaskRequest* req,
                                       v1::FinishTaskResponse* resp) override;

 private:
  std::shared_ptr<Workers> spawner_;
  BoundedExecutorPtr executor_;
  ProjectVisibilityPtr projects_;
};

// RunnerService: each runner's one bidirectional connection.
class RunnerServiceImpl final : public v1::RunnerService::CallbackService {
 public:
  RunnerServiceImpl(std::shared_ptr<Workers> spawner, BoundedExecutorPtr executor)
      : spawner_(std::move(spawner)), executor_(std::move(executor)) {}

  grpc::ServerBidiReactor<v1::ConnectRequest, v1::ConnectResponse>* Connect(
      grpc::CallbackServerContext* ctx) override;

 private:
  std::shared_ptr<Workers> spawner_;
  BoundedExecutorPtr executor_;
};

}  // namespace orchestrator::agents
