#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "orchestrator/admin/v1/admin.pb.h"
#include "orchestrator/deploy/v1/deploy.pb.h"
#include "orchestrator/engineering/v1/engineering.pb.h"
#include "orchestrator/infra/v1/infra.pb.h"
#include "orchestrator/jobs/v1/jobs.pb.h"
#include "orchestrator/scaffolder/v1/scaffolder.pb.h"
#include "orchestrator/scheduler/v1/scheduler.pb.h"
#include "services/common/auth/principal.h"

namespace orchestrator::admin {

// What the pipeline steps need of the other components, each reached
// through its own contract (peers/ implements it over their stubs, as the
// mesh). A step's RPC runs acting for `act_for` ("" = the mesh itself).
class PipelinePeers {
 public:
  virtual ~PipelinePeers() = default;

  // Whether `component` is part of this mesh (hosted here, or given by
  // --<component>_addr).
  virtual bool Reaches(absl::string_view component) = 0;
  // The project's owner; NOT_FOUND for an unknown project.
  virtual absl::StatusOr<std::string> ProjectOwner(const std::string& project_id) = 0;
  // Every task of the scheduler.
  virtual absl::StatusOr<std::vector<scheduler::v1::Task>> SchedulerTasks() = 0;

  virtual absl::StatusOr<jobs::v1::Job> Scaffold(const std::string& act_for,
                                                 const scaffolder::v1::ScaffoldRequest& req) = 0;
  virtual absl::StatusOr<jobs::v1::Job> TriggerEngineering(
      const std::string& act_for, const engineering::v1::TriggerEngineeringRequest& req) = 0;
  virtual absl::StatusOr<jobs::v1::Job> TriggerDeploy(
      const std::string& act_for, const deploy::v1::TriggerDeployRequest& req) = 0;
  virtual absl::StatusOr<jobs::v1::Job> Rollback(const std::string& act_for,
                                                 const deploy::v1::RollbackRequest& req) = 0;
  virtual absl::StatusOr<jobs::v1::Job> ProvisionServer(
      const std::string& act_for, const infra::v1::ProvisionServerRequest& req) = 0;
  virtual absl::StatusOr<jobs::v1::Job> RunTaskNow(const std::string& act_for,
                                                   const scheduler::v1::RunTaskNowRequest& req) = 0;

  // JobService.ClearProjectJobs.
  virtual absl::StatusOr<jobs::v1::ClearProjectJobsResponse> ClearProjectJobs(
      const jobs::v1::ClearProjectJobsRequest& req) = 0;
  // Returns once each of `job_ids` has ended (or is gone), or at `deadline`;
  // the ids of those still not ended then.
  virtual absl::StatusOr<std::vector<std::string>> AwaitJobsEnded(
      const std::vector<std::string>& job_ids, absl::Time deadline) = 0;
  // SessionService.DropJobNotifications, in batches of what one request
  // may name; how many were dropped.
  virtual absl::StatusOr<int64_t> DropJobNotifications(const std::vector<std::string>& job_ids) = 0;
};

using PipelinePeersPtr = std::shared_ptr<PipelinePeers>;

// The pipeline steps an admin runs by hand, and clearing a project's
// state. Each step is the owning component's own RPC, called for the
// project's owner, so it enqueues the job that RPC would; the permission
// (admin.step.*, admin.project.clear) is checked by the interceptor.
class PipelineConsole final {
 public:
  explicit PipelineConsole(PipelinePeersPtr peers) : peers_(std::move(peers)) {}

  absl::StatusOr<v1::ListPipelineStepsResponse> ListSteps(const Principal& caller);
  absl::StatusOr<jobs::v1::Job> TriggerStep(const Principal& caller,
                                            const v1::TriggerStepRequest& req);
  // Waits for the running jobs it cancels until `wait_until` at most.
  absl::StatusOr<v1::ClearProjectStateResponse> ClearProjectState(
      const Principal& caller, const v1::ClearProjectStateRequest& req, absl::Time wait_until);

  // The steps that are always there (scheduler tasks come on top), in
  // pipeline order.
  static const std::vector<v1::PipelineStep>& FixedSteps();
  // "task:<task id>" steps name a scheduler task.
  static constexpr absl::string_view kTaskStepPrefix = "task:";

 private:
  PipelinePeersPtr peers_;
};

}  // namespace orchestrator::admin
