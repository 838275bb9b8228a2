#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "orchestrator/engineering/v1/engineering.grpc.pb.h"
#include "services/common/auth/mesh_identity.h"
#include "services/common/peers/lazy_stub.h"
#include "services/deploy/domain/deploy_fixer.h"
#include "services/deploy/domain/readiness.h"
#include "services/jobs/store/pg_job_store.h"

namespace orchestrator::deploy {

// A fix's engineering run through EngineeringService (as the mesh acting
// for the project's owner, naming the fix job as the run's origin), its
// job read from the job store, and the redeploy queued as TriggerDeploy
// queues one (readiness first).
class EngineeringFixPeers final : public FixPeers {
 public:
  using StubPtr = LazyStub<engineering::v1::EngineeringService>::StubPtr;
  EngineeringFixPeers(std::function<StubPtr()> make_engineering, MeshCredentialPtr mesh,
                      std::chrono::milliseconds deadline, std::shared_ptr<jobs::PgJobStore> jobs,
                      std::shared_ptr<ReadinessChecker> readiness)
      : engineering_(std::move(make_engineering)),
        mesh_(std::move(mesh)),
        deadline_(deadline),
        jobs_(std::move(jobs)),
        readiness_(std::move(readiness)) {}

  absl::StatusOr<jobs::v1::Job> StartEngineering(const std::string& owner_id,
                                                 const std::string& project_id,
                                                 const std::string& instructions,
                                                 const std::string& request_id,
                                                 const std::string& fix_job_id) override;
  absl::StatusOr<jobs::v1::Job> GetJob(const std::string& job_id) override;
  absl::StatusOr<jobs::v1::Job> Redeploy(const std::string& owner_id, const std::string& project_id,
                                         const std::string& commit_sha,
                                         const std::string& request_id,
                                         const std::string& fix_job_id,
                                         const std::string& engineering_job_id,
                                         const std::string& started_because) override;

 private:
  LazyStub<engineering::v1::EngineeringService> engineering_;
  MeshCredentialPtr mesh_;
  std::chrono::milliseconds deadline_;
  std::shared_ptr<jobs::PgJobStore> jobs_;
  std::shared_ptr<ReadinessChecker> readiness_;
};

}  // namespace orchestrator::deploy
