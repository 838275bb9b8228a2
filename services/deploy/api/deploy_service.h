#pragma once

#include <memory>

#include "orchestrator/deploy/v1/deploy.grpc.pb.h"
#include "services/common/auth/principal.h"
#include "services/common/executor/bounded_executor.h"
#include "services/common/peers/project_visibility.h"
#include "services/deploy/domain/deployer.h"
#include "services/deploy/domain/readiness.h"
#include "services/jobs/store/pg_job_store.h"

namespace orchestrator::deploy {

// The kinds of job TriggerDeploy and Rollback enqueue (one at a time per
// project: they share a concurrency key).
inline constexpr char kDeployJobKind[] = "deploy";
inline constexpr char kRollbackJobKind[] = "rollback";
std::string DeployConcurrencyKey(const std::string& project_id);
// A rollback job's param: roll back only while this release is LIVE.
inline constexpr char kOnlyWhileLiveParam[] = "only_while_live";
// The job that makes `target_release_id` LIVE again, for `owner_id`.
jobs::EnqueueRequest RollbackJob(const std::string& owner_id, const std::string& project_id,
                                 const std::string& target_release_id,
                                 const std::string& request_id);

// The deploy job of what readiness found ready: its commit, on the server
// holding the project's ports.
jobs::EnqueueRequest DeployJobFor(const std::string& owner_id, const std::string& project_id,
                                  const Readiness& ready, const std::string& request_id);

// DeployService: readiness (the one definition), deploys and rollbacks as
// jobs, releases and their deploy logs. Every call checks, as the caller,
// that the project is theirs.
class DeployServiceImpl final : public v1::DeployService::CallbackService {
 public:
  DeployServiceImpl(std::shared_ptr<ReadinessChecker> readiness, ReleaseStorePtr releases,
                    std::shared_ptr<jobs::PgJobStore> jobs, ProjectVisibilityPtr visibility,
                    BoundedExecutorPtr executor)
      : readiness_(std::move(readiness)),
        releases_(std::move(releases)),
        jobs_(std::move(jobs)),
        visibility_(std::move(visibility)),
        executor_(std::move(executor)) {}

  grpc::ServerUnaryReactor* CheckReadiness(grpc::CallbackServerContext* ctx,
                                           const v1::CheckReadinessRequest* req,
                                           v1::CheckReadinessResponse* resp) override;
  grpc::ServerUnaryReactor* TriggerDeploy(grpc::CallbackServerContext* ctx,
                                          const v1::TriggerDeployRequest* req,
                                          v1::TriggerDeployResponse* resp) override;
  grpc::ServerUnaryReactor* Rollback(grpc::CallbackServerContext* ctx,
                                     const v1::RollbackRequest* req,
                                     v1::RollbackResponse* resp) override;
  grpc::ServerUnaryReactor* ListReleases(grpc::CallbackServerContext* ctx,
                                         const v1::ListReleasesRequest* req,
                                         v1::ListReleasesResponse* resp) override;
  grpc::ServerUnaryReactor* GetRelease(grpc::CallbackServerContext* ctx,
                                       const v1::GetReleaseRequest* req,
                                       v1::GetReleaseResponse* resp) override;
  grpc::ServerUnaryReactor* GetDeployLogs(grpc::CallbackServerContext* ctx,
                                          const v1::GetDeployLogsRequest* req,
                                          v1::GetDeployLogsResponse* resp) override;

 private:
  // The release, when the caller may see it (NOT_FOUND otherwise).
  absl::StatusOr<v1::Release> VisibleRelease(const Principal& caller,
                                             const std::string& release_id) const;
  // A request to start a job (its project already checked as the caller's):
  // the job its request_id made before, if any (its kind and project must
  // match).
  absl::StatusOr<std::optional<jobs::v1::Job>> Admit(const Principal& caller,
                                                     const std::string& project_id,
                                                     const std::string& request_id,
                                                     const std::string& kind) const;

  std::shared_ptr<ReadinessChecker> readiness_;
  ReleaseStorePtr releases_;
  std::shared_ptr<jobs::PgJobStore> jobs_;
  ProjectVisibilityPtr visibility_;
  BoundedExecutorPtr executor_;
};

// True when a deploy or rollback of the project is queued or running.
absl::StatusOr<bool> DeployInFlightIn(jobs::PgJobStore& jobs, const std::string& project_id);

}  // namespace orchestrator::deploy
