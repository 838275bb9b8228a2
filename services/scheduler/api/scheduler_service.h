#pragma once

#include <memory>

#include "orchestrator/scheduler/v1/scheduler.grpc.pb.h"
#include "services/common/executor/bounded_executor.h"
#include "services/scheduler/domain/scheduler.h"

namespace orchestrator::scheduler {

// SchedulerService: the platform's periodic tasks (the permissions,
// scheduler.*, are an admin's).
class SchedulerServiceImpl final : public v1::SchedulerService::CallbackService {
 public:
  SchedulerServiceImpl(std::shared_ptr<Scheduler> scheduler, BoundedExecutorPtr executor)
      : scheduler_(std::move(scheduler)), executor_(std::move(executor)) {}

  grpc::ServerUnaryReactor* ListTasks(grpc::CallbackServerContext* ctx,
                                      const v1::ListTasksRequest* req,
                                      v1::ListTasksResponse* resp) override;
  grpc::ServerUnaryReactor* GetTask(grpc::CallbackServerContext* ctx, const v1::GetTaskRequest* req,
                                    v1::GetTaskResponse* resp) override;
  grpc::ServerUnaryReactor* RunTaskNow(grpc::CallbackServerContext* ctx,
                                       const v1::RunTaskNowRequest* req,
                                       v1::RunTaskNowResponse* resp) override;
  grpc::ServerUnaryReactor* PauseTask(grpc::CallbackServerContext* ctx,
                                      const v1::PauseTaskRequest* req,
                                      v1::PauseTaskResponse* resp) override;
  grpc::ServerUnaryReactor* ResumeTask(grpc::CallbackServerContext* ctx,
                                       const v1::ResumeTaskRequest* req,
                                       v1::ResumeTaskResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateTaskSchedule(grpc::CallbackServerContext* ctx,
                                               const v1::UpdateTaskScheduleRequest* req,
                                               v1::UpdateTaskScheduleResponse* resp) override;
  grpc::ServerUnaryReactor* ListTaskRuns(grpc::CallbackServerContext* ctx,
                                         const v1::ListTaskRunsRequest* req,
                                         v1::ListTaskRunsResponse* resp) override;

 private:
  std::shared_ptr<Scheduler> scheduler_;
  BoundedExecutorPtr executor_;
};

}  // namespace orchestrator::scheduler
