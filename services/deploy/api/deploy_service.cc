#include "services/deploy/api/deploy_service.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/common/pagination/page_token.h"
#include "services/common/peers/serve_for_project.h"
#include "services/common/rpc/serve_unary.h"

namespace orchestrator::deploy {

std::string DeployConcurrencyKey(const std::string& project_id) {
  return absl::StrCat("deploy:", project_id);
}

jobs::EnqueueRequest RollbackJob(const std::string& owner_id, const std::string& project_id,
                                 const std::string& target_release_id,
                                 const std::string& request_id) {
  jobs::EnqueueRequest job;
  job.kind = kRollbackJobKind;
  job.owner_id = owner_id;
  job.project_id = project_id;
  (*job.params.mutable_fields())["release_id"].set_string_value(target_release_id);
  job.request_id = request_id;
  job.max_attempts = 5;
  job.concurrency_key = DeployConcurrencyKey(project_id);
  return job;
}

jobs::EnqueueRequest DeployJobFor(const std::string& owner_id, const std::string& project_id,
                                  const Readiness& ready, const std::string& request_id) {
  jobs::EnqueueRequest job;
  job.kind = kDeployJobKind;
  job.owner_id = owner_id;
  job.project_id = project_id;
  (*job.params.mutable_fields())["commit_sha"].set_string_value(ready.commit_sha);
  // Where readiness found (or made) the project's ports.
  (*job.params.mutable_fields())["server_id"].set_string_value(ready.slots.live.server_id());
  job.request_id = request_id;
  job.max_attempts = 5;
  job.concurrency_key = DeployConcurrencyKey(project_id);
  return job;
}

absl::StatusOr<bool> DeployInFlightIn(jobs::PgJobStore& jobs, const std::string& project_id) {
  for (const char* kind : {kDeployJobKind, kRollbackJobKind}) {
    for (auto state : {jobs::v1::JOB_STATE_QUEUED, jobs::v1::JOB_STATE_RUNNING}) {
      jobs::JobFilter filter;
      filter.project_id = project_id;
      filter.kind = kind;
      filter.state = state;
      PageRequest page;
      page.page_size = 1;
      auto found = jobs.List(filter, page);
      if (!found.ok()) return found.status();
      if (!found->jobs.empty()) return true;
    }
  }
  return false;
}

absl::StatusOr<v1::Release> DeployServiceImpl::VisibleRelease(const Principal& caller,
                                                              const std::string& release_id) const {
  if (release_id.empty()) return absl::InvalidArgumentError("release_id: required");
  auto release = releases_->Get(release_id);
  if (!release.ok()) return release.status();
  if (!CanSeeOwner(caller, release->owner_id()) ||
      !CanReachProject(caller, release->project_id())) {
    return absl::NotFoundError(absl::StrCat("release '", release_id, "' not found"));
  }
  return release;
}

absl::StatusOr<std::optional<jobs::v1::Job>> DeployServiceImpl::Admit(
    const Principal& caller, const std::string& project_id, const std::string& request_id,
    const std::string& kind) const {
  if (project_id.empty()) return absl::InvalidArgumentError("project_id: required");
  auto earlier = jobs_->FindByRequest(caller.user_id, request_id);
  if (!earlier.ok()) return earlier.status();
  if (*earlier && ((*earlier)->kind() != kind || (*earlier)->project_id() != project_id)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "request_id '", request_id, "' was used for another request (job ", (*earlier)->id(), ")"));
  }
  return earlier;
}

grpc::ServerUnaryReactor* DeployServiceImpl::CheckReadiness(grpc::CallbackServerContext* ctx,
                                                            const v1::CheckReadinessRequest* req,
                                                            v1::CheckReadinessResponse* resp) {
  return ServeUnaryForProject(ctx, executor_, visibility_.get(), "project_id", req->project_id(),
                              [this, req, resp](const Principal& caller) -> absl::Status {
                                if (req->project_id().empty()) {
                                  return absl::InvalidArgumentError("project_id: required");
                                }
                                auto ready = readiness_->Check(caller.user_id, req->project_id(),
                                                               "", req->server_id());
                                if (!ready.ok()) return ready.status();
                                *resp = std::move(ready->report);
                                return absl::OkStatus();
                              });
}

grpc::ServerUnaryReactor* DeployServiceImpl::TriggerDeploy(grpc::CallbackServerContext* ctx,
                                                           const v1::TriggerDeployRequest* req,
                                                           v1::TriggerDeployResponse* resp) {
  return ServeUnaryForProject(
      ctx, executor_, visibility_.get(), "project_id", req->project_id(),
      [this, req, resp](const Principal& caller) -> absl::Status {
        auto earlier = Admit(caller, req->project_id(), req->request_id(), kDeployJobKind);
        if (!earlier.ok()) return earlier.status();
        if (*earlier) {
          *resp->mutable_job() = **earlier;
          return absl::OkStatus();
        }
        auto ready = readiness_->Check(caller.user_id, req->project_id(), req->commit_sha(),
                                       req->server_id());
        if (!ready.ok()) return ready.status();
        if (auto s = ready->AsStatus(); !s.ok()) return s;
        jobs::EnqueueRequest job =
            DeployJobFor(caller.user_id, req->project_id(), *ready, req->request_id());
        job.origin = jobs::OriginOf(caller);
        return FillResponse(jobs_->Enqueue(job, absl::Now()),
                            [resp](jobs::v1::Job j) { *resp->mutable_job() = std::move(j); });
      });
}

grpc::ServerUnaryReactor* DeployServiceImpl::Rollback(grpc::CallbackServerContext* ctx,
                                                      const v1::RollbackRequest* req,
                                                      v1::RollbackResponse* resp) {
  return ServeUnaryForProject(
      ctx, executor_, visibility_.get(), "project_id", req->project_id(),
      [this, req, resp](const Principal& caller) -> absl::Status {
        auto earlier = Admit(caller, req->project_id(), req->request_id(), kRollbackJobKind);
        if (!earlier.ok()) return earlier.status();
        if (*earlier) {
          *resp->mutable_job() = **earlier;
          return absl::OkStatus();
        }
        absl::StatusOr<v1::Release> target = req->release_id().empty()
                                                 ? PreviousRelease(*releases_, req->project_id())
                                                 : VisibleRelease(caller, req->release_id());
        if (!target.ok()) return target.status();
        if (target->project_id() != req->project_id()) {
          return absl::NotFoundError(absl::StrCat("release '", req->release_id(),
                                                  "' not found in project ", req->project_id()));
        }
        if (target->status() == v1::RELEASE_STATUS_LIVE) {
          return absl::FailedPreconditionError(
              absl::StrCat("release ", target->version(), " is already live"));
        }
        if (target->image().empty() || (target->status() != v1::RELEASE_STATUS_SUPERSEDED &&
                                        target->live_time().seconds() == 0)) {
          return absl::FailedPreconditionError(
              absl::StrCat("release ", target->version(), " never went live: deploy instead"));
        }
        auto busy = DeployInFlightIn(*jobs_, req->project_id());
        if (!busy.ok()) return busy.status();
        if (*busy) {
          return absl::FailedPreconditionError(
              "a deploy or rollback of the project is queued or running: wait for it to end");
        }
        jobs::EnqueueRequest job =
            RollbackJob(caller.user_id, req->project_id(), target->id(), req->request_id());
        job.origin = jobs::OriginOf(caller);
        return FillResponse(jobs_->Enqueue(job, absl::Now()),
                            [resp](jobs::v1::Job j) { *resp->mutable_job() = std::move(j); });
      });
}

grpc::ServerUnaryReactor* DeployServiceImpl::ListReleases(grpc::CallbackServerContext* ctx,
                                                          const v1::ListReleasesRequest* req,
                                                          v1::ListReleasesResponse* resp) {
  return ServeUnaryForProject(
      ctx, executor_, visibility_.get(), "project_id", req->project_id(),
      [this, req, resp](const Principal&) -> absl::Status {
        if (req->project_id().empty()) return absl::InvalidArgumentError("project_id: required");
        const std::string filters = absl::StrCat(req->project_id(), "|", req->status());
        auto page = ParsePageRequest(req->page_size(), req->page_token(), filters, 50, 500);
        if (!page.ok()) return page.status();
        auto rows = releases_->List(req->project_id(), req->status(), *page);
        if (!rows.ok()) return rows.status();
        for (auto& r : rows->items) *resp->add_releases() = std::move(r);
        if (!rows->last_keys.empty()) {
          resp->set_next_page_token(MakePageToken(filters, rows->last_keys));
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* DeployServiceImpl::GetRelease(grpc::CallbackServerContext* ctx,
                                                        const v1::GetReleaseRequest* req,
                                                        v1::GetReleaseResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) -> absl::Status {
    return FillResponse(VisibleRelease(caller, req->release_id()),
                        [resp](v1::Release r) { *resp->mutable_release() = std::move(r); });
  });
}

grpc::ServerUnaryReactor* DeployServiceImpl::GetDeployLogs(grpc::CallbackServerContext* ctx,
                                                           const v1::GetDeployLogsRequest* req,
                                                           v1::GetDeployLogsResponse* resp) {
  return ServeUnaryForProject(
      ctx, executor_, visibility_.get(), "project_id", req->project_id(),
      [this, req, resp](const Principal& caller) -> absl::Status {
        if (req->project_id().empty()) return absl::InvalidArgumentError("project_id: required");
        std::string job_id = req->job_id();
        if (!req->release_id().empty()) {
          auto release = VisibleRelease(caller, req->release_id());
          if (!release.ok()) return release.status();
          job_id = release->job_id();
        }
        if (job_id.empty()) {
          // The project's latest deploy or rollback.
          jobs::v1::Job latest;
          for (const char* kind : {kDeployJobKind, kRollbackJobKind}) {
            jobs::JobFilter filter;
            filter.project_id = req->project_id();
            filter.kind = kind;
            PageRequest page;
            page.page_size = 1;
            auto found = jobs_->List(filter, page);
            if (!found.ok()) return found.status();
            if (!found->jobs.empty() &&
                found->jobs[0].create_time().seconds() >= latest.create_time().seconds()) {
              latest = found->jobs[0];
            }
          }
          if (latest.id().empty()) {
            return absl::NotFoundError(
                absl::StrCat("project ", req->project_id(), " has no deploy yet"));
          }
          job_id = latest.id();
        }
        auto job = jobs_->Get(job_id);
        if (!job.ok()) return job.status();
        if (job->project_id() != req->project_id() ||
            (job->kind() != kDeployJobKind && job->kind() != kRollbackJobKind) ||
            !CanSeeOwner(caller, job->owner_id())) {
          return absl::NotFoundError(absl::StrCat("deploy job '", job_id, "' not found"));
        }
        const std::string filters = absl::StrCat(req->project_id(), "|", job_id);
        auto page = ParsePageRequest(req->page_size(), req->page_token(), filters, 500, 5000);
        if (!page.ok()) return page.status();
        int64_t after = 0;
        if (!page->after.empty() &&
            (page->after.size() != 1 || !absl::SimpleAtoi(page->after[0], &after) || after < 0)) {
          return absl::InvalidArgumentError("page_token: malformed");
        }
        auto events = jobs_->ListEvents(job_id, after, page->page_size + 1);
        if (!events.ok()) return events.status();
        resp->set_job_id(job_id);
        int taken = 0;
        int64_t last = after;
        for (const auto& e : *events) {
          if (taken == page->page_size) {
            resp->set_next_page_token(MakePageToken(filters, {std::to_string(last)}));
            break;
          }
          ++taken;
          last = e.sequence();
          auto* line = resp->add_lines();
          *line->mutable_emit_time() = e.create_time();
          line->set_stream(common::v1::LOG_STREAM_SYSTEM);
          line->set_source(job->kind());
          if (e.has_log_line()) {
            line->set_text(e.log_line().text());
          } else if (e.has_progress()) {
            line->set_text(
                absl::StrCat("[", e.progress().percent(), "%] ", e.progress().message()));
          } else if (e.has_state_changed()) {
            line->set_text(jobs::v1::JobState_Name(e.state_changed().to_state()));
          } else {
            line->set_text(jobs::v1::JobEventType_Name(e.type()));
          }
        }
        return absl::OkStatus();
      });
}

}  // namespace orchestrator::deploy
