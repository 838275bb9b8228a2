#pragma once

#include <memory>

#include "orchestrator/engineering/v1/engineering.grpc.pb.h"
#include "services/common/auth/principal.h"
#include "services/common/executor/bounded_executor.h"
#include "services/common/peers/project_visibility.h"
#include "services/engineering/domain/engineer.h"
#include "services/engineering/domain/ports.h"
#include "services/jobs/store/pg_job_store.h"

namespace orchestrator::engineering {

// EngineeringService: runs as jobs, their history and changes, and the
// usage they cost. Runs are the project owner's: every call checks, as the
// caller, that the project is theirs (another owner's runs are NOT_FOUND).
class EngineeringServiceImpl final : public v1::EngineeringService::CallbackService {
 public:
  EngineeringServiceImpl(RunStorePtr runs, ProjectDirectoryPtr projects,
                         std::shared_ptr<jobs::PgJobStore> jobs, ProjectVisibilityPtr visibility,
                         BoundedExecutorPtr executor, EngineeringDefaults defaults)
      : runs_(std::move(runs)),
        projects_(std::move(projects)),
        jobs_(std::move(jobs)),
        visibility_(std::move(visibility)),
        executor_(std::move(executor)),
        defaults_(std::move(defaults)) {}

  grpc::ServerUnaryReactor* TriggerEngineering(grpc::CallbackServerContext* ctx,
                                               const v1::TriggerEngineeringRequest* req,
                                               v1::TriggerEngineeringResponse* resp) override;
  grpc::ServerUnaryReactor* GetEngineeringRun(grpc::CallbackServerContext* ctx,
                                              const v1::GetEngineeringRunRequest* req,
                                              v1::GetEngineeringRunResponse* resp) override;
  grpc::ServerUnaryReactor* ListEngineeringRuns(grpc::CallbackServerContext* ctx,
                                                const v1::ListEngineeringRunsRequest* req,
                                                v1::ListEngineeringRunsResponse* resp) override;
  grpc::ServerUnaryReactor* GetLatestChange(grpc::CallbackServerContext* ctx,
                                            const v1::GetLatestChangeRequest* req,
                                            v1::GetLatestChangeResponse* resp) override;
  grpc::ServerUnaryReactor* GetEngineeringUsage(grpc::CallbackServerContext* ctx,
                                                const v1::GetEngineeringUsageRequest* req,
                                                v1::GetEngineeringUsageResponse* resp) override;

 private:
  // A run as users see it: one its job ended without (cancelled, or failed
  // before the run could record why) shows how the job ended.
  v1::EngineeringRun AsSeen(v1::EngineeringRun run) const;
  absl::Status FillUsage(const std::string& owner_id, const std::string& project_id,
                         v1::GetEngineeringUsageResponse* resp) const;

  RunStorePtr runs_;
  ProjectDirectoryPtr projects_;
  std::shared_ptr<jobs::PgJobStore> jobs_;
  ProjectVisibilityPtr visibility_;
  BoundedExecutorPtr executor_;
  EngineeringDefaults defaults_;
};

}  // namespace orchestrator::engineering
