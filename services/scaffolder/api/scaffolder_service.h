#pragma once

#include <memory>

#include "orchestrator/scaffolder/v1/scaffolder.grpc.pb.h"
#include "services/common/executor/bounded_executor.h"
#include "services/common/peers/project_visibility.h"
#include "services/jobs/store/pg_job_store.h"
#include "services/scaffolder/domain/scaffold_run.h"

namespace orchestrator::scaffolder {

// The kind of job Scaffold enqueues and the scaffolder's worker runs.
inline constexpr char kScaffoldJobKind[] = "scaffold";

// ScaffolderService: templates from the catalog; Scaffold checks the
// request at once (as the caller: its project, the template, the answers),
// stores secret answers as project secrets, and enqueues the job.
class ScaffolderServiceImpl final : public v1::ScaffolderService::CallbackService {
 public:
  // `executor` runs the bodies (they wait on ProjectService, so not on the
  // executor ProjectService itself serves from).
  ScaffolderServiceImpl(std::shared_ptr<Scaffolder> scaffolder,
                        std::shared_ptr<jobs::PgJobStore> jobs,
                        std::shared_ptr<ProjectDirectory> projects, ProjectVisibilityPtr visibility,
                        BoundedExecutorPtr executor)
      : scaffolder_(std::move(scaffolder)),
        jobs_(std::move(jobs)),
        projects_(std::move(projects)),
        visibility_(std::move(visibility)),
        executor_(std::move(executor)) {}

  grpc::ServerUnaryReactor* ListTemplates(grpc::CallbackServerContext* ctx,
                                          const v1::ListTemplatesRequest* req,
                                          v1::ListTemplatesResponse* resp) override;
  grpc::ServerUnaryReactor* GetTemplate(grpc::CallbackServerContext* ctx,
                                        const v1::GetTemplateRequest* req,
                                        v1::GetTemplateResponse* resp) override;
  grpc::ServerUnaryReactor* Scaffold(grpc::CallbackServerContext* ctx,
                                     const v1::ScaffoldRequest* req,
                                     v1::ScaffoldResponse* resp) override;

 private:
  std::shared_ptr<Scaffolder> scaffolder_;
  std::shared_ptr<jobs::PgJobStore> jobs_;
  std::shared_ptr<ProjectDirectory> projects_;
  ProjectVisibilityPtr visibility_;
  BoundedExecutorPtr executor_;
};

}  // namespace orchestrator::scaffolder
