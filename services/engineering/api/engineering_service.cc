#include "services/engineering/api/engineering_service.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/common/crypto/secret_box.h"
#include "services/common/pagination/page_token.h"
#include "services/common/peers/serve_for_project.h"
#include "services/common/rpc/serve_unary.h"

namespace orchestrator::engineering {

v1::EngineeringRun EngineeringServiceImpl::AsSeen(v1::EngineeringRun run) const {
  switch (run.status()) {
    case v1::ENGINEERING_RUN_STATUS_SUCCEEDED:
    case v1::ENGINEERING_RUN_STATUS_FAILED:
    case v1::ENGINEERING_RUN_STATUS_CANCELLED:
      return run;
    default:
      break;
  }
  auto job = jobs_->Get(run.job_id());
  if (!job.ok()) return run;
  if (job->state() == jobs::v1::JOB_STATE_CANCELLED) {
    run.set_status(v1::ENGINEERING_RUN_STATUS_CANCELLED);
    *run.mutable_end_time() = job->end_time();
    run.clear_worker_id();
  } else if (job->state() == jobs::v1::JOB_STATE_FAILED) {
    run.set_status(v1::ENGINEERING_RUN_STATUS_FAILED);
    *run.mutable_error() = job->error();
    *run.mutable_end_time() = job->end_time();
    run.clear_worker_id();
  }
  return run;
}

grpc::ServerUnaryReactor* EngineeringServiceImpl::TriggerEngineering(
    grpc::CallbackServerContext* ctx, const v1::TriggerEngineeringRequest* req,
    v1::TriggerEngineeringResponse* resp) {
  return ServeUnaryForProjectOwner(
      ctx, executor_, visibility_.get(), "project_id", req->project_id(),
      [this, req, resp](const Principal& caller, const std::string& owner_id) -> absl::Status {
        EngineeringRequest request;
        request.owner_id = owner_id;
        request.project_id = req->project_id();
        request.instructions = req->instructions();
        request.agent_type = req->agent_type();
        request.max_iterations = req->max_iterations();
        request.request_id = req->request_id();
        if (auto s = ValidateRequest(request); !s.ok()) return s;
        if (!req->request_id().empty()) {
          auto earlier = jobs_->FindByRequest(owner_id, req->request_id());
          if (!earlier.ok()) return earlier.status();
          if (*earlier) {
            if ((*earlier)->kind() != kEngineeringJobKind ||
                (*earlier)->project_id() != req->project_id()) {
              return absl::FailedPreconditionError(
                  absl::StrCat("request_id '", req->request_id(),
                               "' was used for another request (job ", (*earlier)->id(), ")"));
            }
            auto run = runs_->EnsureForJob(QueuedRunOf(**earlier));
            if (!run.ok()) return run.status();
            *resp->mutable_job() = **earlier;
            *resp->mutable_run() = AsSeen(*std::move(run));
            return absl::OkStatus();
          }
        }
        auto project = projects_->Get(owner_id, req->project_id());
        if (!project.ok()) return project.status();
        if (auto s = CheckProjectRunnable(*project); !s.ok()) return s;
        if (auto s = CheckBudget(*runs_, owner_id, defaults_, absl::Now()); !s.ok()) return s;
        jobs::EnqueueRequest queued = EngineeringJob(request, defaults_, NewId("eng_"));
        queued.origin = jobs::OriginOf(caller);
        auto job = jobs_->Enqueue(queued, absl::Now());
        if (!job.ok()) return job.status();
        auto run = runs_->EnsureForJob(QueuedRunOf(*job));
        if (!run.ok()) return run.status();
        *resp->mutable_job() = *std::move(job);
        *resp->mutable_run() = *std::move(run);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* EngineeringServiceImpl::GetEngineeringRun(
    grpc::CallbackServerContext* ctx, const v1::GetEngineeringRunRequest* req,
    v1::GetEngineeringRunResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) -> absl::Status {
    if (req->run_id().empty()) return absl::InvalidArgumentError("run_id: required");
    auto stored = runs_->Get(req->run_id());
    if (!stored.ok()) return stored.status();
    if (!CanSeeOwner(caller, stored->run.owner_id()) ||
        !CanReachProject(caller, stored->run.project_id())) {
      return absl::NotFoundError(absl::StrCat("engineering run '", req->run_id(), "' not found"));
    }
    *resp->mutable_run() = AsSeen(std::move(stored->run));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* EngineeringServiceImpl::ListEngineeringRuns(
    grpc::CallbackServerContext* ctx, const v1::ListEngineeringRunsRequest* req,
    v1::ListEngineeringRunsResponse* resp) {
  return ServeUnaryForProject(
      ctx, executor_, visibility_.get(), "project_id", req->project_id(),
      [this, req, resp](const Principal&) -> absl::Status {
        if (req->project_id().empty()) return absl::InvalidArgumentError("project_id: required");
        if (!v1::EngineeringRunStatus_IsValid(req->status())) {
          return absl::InvalidArgumentError("status: unknown");
        }
        const std::string filters = absl::StrCat(req->project_id(), "|", req->status());
        auto page = ParsePageRequest(req->page_size(), req->page_token(), filters, 50, 500);
        if (!page.ok()) return page.status();
        auto rows = runs_->List(req->project_id(), req->status(), *page);
        if (!rows.ok()) return rows.status();
        for (auto& r : rows->items) *resp->add_runs() = AsSeen(std::move(r));
        if (!rows->last_keys.empty()) {
          resp->set_next_page_token(MakePageToken(filters, rows->last_keys));
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* EngineeringServiceImpl::GetLatestChange(
    grpc::CallbackServerContext* ctx, const v1::GetLatestChangeRequest* req,
    v1::GetLatestChangeResponse* resp) {
  return ServeUnaryForProject(
      ctx, executor_, visibility_.get(), "project_id", req->project_id(),
      [this, req, resp](const Principal&) -> absl::Status {
        if (req->project_id().empty()) return absl::InvalidArgumentError("project_id: required");
        auto latest = runs_->LatestSucceeded(req->project_id());
        if (!latest.ok()) return latest.status();
        if (!*latest) {
          return absl::NotFoundError(absl::StrCat("project ", req->project_id(),
                                                  " has no change from an engineering run yet"));
        }
        *resp->mutable_change() = (*latest)->change();
        return absl::OkStatus();
      });
}

absl::Status EngineeringServiceImpl::FillUsage(const std::string& owner_id,
                                               const std::string& project_id,
                                               v1::GetEngineeringUsageResponse* resp) const {
  UsageScope asked;
  asked.owner_id = project_id.empty() ? owner_id : "";
  asked.project_id = project_id;
  auto total = runs_->SumUsage(asked);
  if (!total.ok()) return total.status();
  *resp->mutable_usage() = total->usage;
  resp->set_run_count(total->run_count);
  resp->set_budget_tokens(defaults_.token_budget);
  *resp->mutable_budget_window() = google::protobuf::util::TimeUtil::SecondsToDuration(
      absl::ToInt64Seconds(defaults_.budget_window));
  UsageScope window;
  window.owner_id = owner_id;
  window.since = absl::Now() - defaults_.budget_window;
  auto recent = runs_->SumUsage(window);
  if (!recent.ok()) return recent.status();
  resp->set_window_tokens(recent->usage.input_tokens() + recent->usage.output_tokens());
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* EngineeringServiceImpl::GetEngineeringUsage(
    grpc::CallbackServerContext* ctx, const v1::GetEngineeringUsageRequest* req,
    v1::GetEngineeringUsageResponse* resp) {
  if (req->project_id().empty()) {
    return ServeUnary(ctx, *executor_, [this, resp](const Principal& caller) {
      return FillUsage(caller.user_id, "", resp);
    });
  }
  return ServeUnaryForProjectOwner(
      ctx, executor_, visibility_.get(), "project_id", req->project_id(),
      [this, req, resp](const Principal&, const std::string& owner_id) {
        return FillUsage(owner_id, req->project_id(), resp);
      });
}

}  // namespace orchestrator::engineering
