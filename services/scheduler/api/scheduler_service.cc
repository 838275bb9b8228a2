#include "services/scheduler/api/scheduler_service.h"

#include "services/common/pagination/page_token.h"
#include "services/common/rpc/serve_unary.h"

namespace orchestrator::scheduler {
namespace {

absl::Status RequireTask(const std::string& task_id) {
  if (task_id.empty()) return absl::InvalidArgumentError("task_id: required");
  return absl::OkStatus();
}

}  // namespace

grpc::ServerUnaryReactor* SchedulerServiceImpl::ListTasks(grpc::CallbackServerContext* ctx,
                                                          const v1::ListTasksRequest* req,
                                                          v1::ListTasksResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal&) -> absl::Status {
    // Few tasks (each component's handful): one page by id.
    auto page = ParsePageRequest(req->page_size(), req->page_token(), "", 50, 500);
    if (!page.ok()) return page.status();
    auto tasks = scheduler_->ListTasks();
    if (!tasks.ok()) return tasks.status();
    size_t start = 0;
    if (!page->after.empty()) {
      while (start < tasks->size() && (*tasks)[start].id() <= page->after[0]) ++start;
    }
    const size_t end = std::min(tasks->size(), start + static_cast<size_t>(page->page_size));
    for (size_t i = start; i < end; ++i) *resp->add_tasks() = std::move((*tasks)[i]);
    if (end < tasks->size() && end > start) {
      resp->set_next_page_token(MakePageToken("", {resp->tasks().rbegin()->id()}));
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SchedulerServiceImpl::GetTask(grpc::CallbackServerContext* ctx,
                                                        const v1::GetTaskRequest* req,
                                                        v1::GetTaskResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal&) -> absl::Status {
    if (auto s = RequireTask(req->task_id()); !s.ok()) return s;
    return FillResponse(scheduler_->GetTask(req->task_id()),
                        [resp](v1::Task t) { *resp->mutable_task() = std::move(t); });
  });
}

grpc::ServerUnaryReactor* SchedulerServiceImpl::RunTaskNow(grpc::CallbackServerContext* ctx,
                                                           const v1::RunTaskNowRequest* req,
                                                           v1::RunTaskNowResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) -> absl::Status {
    if (auto s = RequireTask(req->task_id()); !s.ok()) return s;
    return FillResponse(scheduler_->RunNow(caller, req->task_id(), req->request_id()),
                        [resp](jobs::v1::Job j) { *resp->mutable_job() = std::move(j); });
  });
}

grpc::ServerUnaryReactor* SchedulerServiceImpl::PauseTask(grpc::CallbackServerContext* ctx,
                                                          const v1::PauseTaskRequest* req,
                                                          v1::PauseTaskResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal&) -> absl::Status {
    if (auto s = RequireTask(req->task_id()); !s.ok()) return s;
    return FillResponse(scheduler_->Pause(req->task_id(), req->note()),
                        [resp](v1::Task t) { *resp->mutable_task() = std::move(t); });
  });
}

grpc::ServerUnaryReactor* SchedulerServiceImpl::ResumeTask(grpc::CallbackServerContext* ctx,
                                                           const v1::ResumeTaskRequest* req,
                                                           v1::ResumeTaskResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal&) -> absl::Status {
    if (auto s = RequireTask(req->task_id()); !s.ok()) return s;
    return FillResponse(scheduler_->Resume(req->task_id()),
                        [resp](v1::Task t) { *resp->mutable_task() = std::move(t); });
  });
}

grpc::ServerUnaryReactor* SchedulerServiceImpl::UpdateTaskSchedule(
    grpc::CallbackServerContext* ctx, const v1::UpdateTaskScheduleRequest* req,
    v1::UpdateTaskScheduleResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal&) -> absl::Status {
    if (auto s = RequireTask(req->task_id()); !s.ok()) return s;
    return FillResponse(scheduler_->UpdateSchedule(*req),
                        [resp](v1::Task t) { *resp->mutable_task() = std::move(t); });
  });
}

grpc::ServerUnaryReactor* SchedulerServiceImpl::ListTaskRuns(grpc::CallbackServerContext* ctx,
                                                             const v1::ListTaskRunsRequest* req,
                                                             v1::ListTaskRunsResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal&) -> absl::Status {
    if (auto s = RequireTask(req->task_id()); !s.ok()) return s;
    return FillResponse(scheduler_->ListRuns(*req),
                        [resp](v1::ListTaskRunsResponse r) { *resp = std::move(r); });
  });
}

}  // namespace orchestrator::scheduler
