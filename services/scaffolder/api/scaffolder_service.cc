#include "services/scaffolder/api/scaffolder_service.h"

#include "absl/strings/str_cat.h"
#include "services/common/pagination/page_token.h"
#include "services/common/rpc/serve_unary.h"

namespace orchestrator::scaffolder {

grpc::ServerUnaryReactor* ScaffolderServiceImpl::ListTemplates(grpc::CallbackServerContext* ctx,
                                                               const v1::ListTemplatesRequest* req,
                                                               v1::ListTemplatesResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal&) -> absl::Status {
    auto page = ParsePageRequest(req->page_size(), req->page_token(), req->language(), 50, 500);
    if (!page.ok()) return page.status();
    for (auto& t : scaffolder_->catalog().List(req->language())) {
      if (!page->after.empty() && t.id() <= page->after.front()) continue;
      if (resp->templates_size() == page->page_size) {
        resp->set_next_page_token(
            MakePageToken(req->language(), {resp->templates(resp->templates_size() - 1).id()}));
        break;
      }
      *resp->add_templates() = std::move(t);
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ScaffolderServiceImpl::GetTemplate(grpc::CallbackServerContext* ctx,
                                                             const v1::GetTemplateRequest* req,
                                                             v1::GetTemplateResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal&) -> absl::Status {
    auto loaded = scaffolder_->catalog().Find(req->template_id(), req->source(), "source");
    if (!loaded.ok()) return loaded.status();
    *resp->mutable_template_() = loaded->manifest;
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ScaffolderServiceImpl::Scaffold(grpc::CallbackServerContext* ctx,
                                                          const v1::ScaffoldRequest* req,
                                                          v1::ScaffoldResponse* resp) {
  CallerCredentials credentials = CredentialsOf(*ctx);
  return ServeUnary(
      ctx, *executor_,
      [this, req, resp,
       credentials = std::move(credentials)](const Principal& caller) -> absl::Status {
        // A retry of an accepted request gets its job, whatever happened since.
        auto earlier = jobs_->FindByRequest(caller.user_id, req->request_id());
        if (!earlier.ok()) return earlier.status();
        if (*earlier) {
          if ((*earlier)->kind() != kScaffoldJobKind ||
              (*earlier)->project_id() != req->project_id()) {
            return absl::FailedPreconditionError(
                absl::StrCat("request_id '", req->request_id(),
                             "' was used for another request (job ", (*earlier)->id(), ")"));
          }
          *resp->mutable_job() = **earlier;
          return absl::OkStatus();
        }
        if (req->project_id().empty()) return absl::InvalidArgumentError("project_id: required");
        // As the caller itself first: an agent reaches only its own project.
        if (auto s = visibility_->CheckVisibleNow(credentials, "project_id", req->project_id());
            !s.ok()) {
          return s;
        }
        auto plan = scaffolder_->Prepare(caller.user_id, *req);
        if (!plan.ok()) return plan.status();
        for (const auto& [name, value] : plan->secrets) {
          if (auto s = projects_->StoreSecret(caller.user_id, plan->project_id, name, value);
              !s.ok()) {
            return s;
          }
        }
        jobs::EnqueueRequest job;
        job.kind = kScaffoldJobKind;
        job.owner_id = caller.user_id;
        job.project_id = plan->project_id;
        job.params = plan->ToParams();
        job.request_id = req->request_id();
        job.max_attempts = 5;
        job.concurrency_key = absl::StrCat("scaffold:", plan->project_id);
        job.origin = jobs::OriginOf(caller);
        return FillResponse(jobs_->Enqueue(job, absl::Now()),
                            [resp](jobs::v1::Job job) { *resp->mutable_job() = std::move(job); });
      });
}

}  // namespace orchestrator::scaffolder
