#include "services/deploy/peers/engineering_fix_peers.h"

#include "absl/strings/str_cat.h"
#include "services/common/auth/origin_claim.h"
#include "services/common/peers/mesh_call.h"
#include "services/common/status/status.h"
#include "services/deploy/api/deploy_service.h"

namespace orchestrator::deploy {

// A fix's run gets a few attempts, not the platform's default.
constexpr int kFixIterations = 2;

absl::StatusOr<jobs::v1::Job> EngineeringFixPeers::StartEngineering(const std::string& owner_id,
                                                                    const std::string& project_id,
                                                                    const std::string& instructions,
                                                                    const std::string& request_id,
                                                                    const std::string& fix_job_id) {
  engineering::v1::TriggerEngineeringRequest req;
  req.set_project_id(project_id);
  req.set_instructions(instructions);
  req.set_request_id(request_id);
  req.set_max_iterations(kFixIterations);
  grpc::ClientContext ctx;
  PrepareMeshCall(ctx, *mesh_, deadline_, owner_id);
  OriginClaim origin;
  origin.job_id = fix_job_id;
  ctx.AddMetadata(std::string(kOriginHeader), FormatOriginClaim(origin));
  engineering::v1::TriggerEngineeringResponse resp;
  if (auto s = FromPeerStatus((*engineering_).TriggerEngineering(&ctx, req, &resp),
                              "EngineeringService");
      !s.ok()) {
    return s;
  }
  return resp.job();
}

absl::StatusOr<jobs::v1::Job> EngineeringFixPeers::GetJob(const std::string& job_id) {
  return jobs_->Get(job_id);
}

absl::StatusOr<jobs::v1::Job> EngineeringFixPeers::Redeploy(
    const std::string& owner_id, const std::string& project_id, const std::string& commit_sha,
    const std::string& request_id, const std::string& fix_job_id,
    const std::string& engineering_job_id, const std::string& started_because) {
  auto earlier = jobs_->FindByRequest(owner_id, request_id);
  if (!earlier.ok()) return earlier.status();
  if (*earlier) return **earlier;
  // An automatic rollback may still run: the redeploy comes after it
  // (UNAVAILABLE: the fix job tries again), also when one starts between
  // this look and readiness's own.
  auto after_others = [&]() -> absl::Status {
    auto busy = DeployInFlightIn(*jobs_, project_id);
    if (!busy.ok()) return busy.status();
    if (!*busy) return absl::OkStatus();
    return absl::UnavailableError(
        "a deploy or rollback of the project is queued or running: the fix is deployed after it");
  };
  if (auto s = after_others(); !s.ok()) return s;
  auto ready = readiness_->Check(owner_id, project_id, commit_sha, "");
  if (!ready.ok()) return ready.status();
  if (auto s = ready->AsStatus(); !s.ok()) {
    if (auto busy = after_others(); !busy.ok()) return busy;
    return s;
  }
  jobs::EnqueueRequest job = DeployJobFor(owner_id, project_id, *ready, request_id);
  auto& params = *job.params.mutable_fields();
  params[kAfterFixParam].set_string_value(fix_job_id);
  params[jobs::kStartedBecauseParam].set_string_value(started_because);
  job.origin = jobs::PlatformOrigin(engineering_job_id);
  return jobs_->Enqueue(job, absl::Now());
}

}  // namespace orchestrator::deploy
