#pragma once

#include <grpcpp/channel.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "orchestrator/deploy/v1/deploy.grpc.pb.h"
#include "orchestrator/engineering/v1/engineering.grpc.pb.h"
#include "orchestrator/infra/v1/infra.grpc.pb.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "orchestrator/scaffolder/v1/scaffolder.grpc.pb.h"
#include "orchestrator/scheduler/v1/scheduler.grpc.pb.h"
#include "orchestrator/sessions/v1/sessions.grpc.pb.h"
#include "services/admin/domain/pipeline_console.h"
#include "services/common/auth/mesh_identity.h"
#include "services/common/peers/lazy_stub.h"

namespace orchestrator::admin {

// PipelinePeers over the components' stubs, as the mesh. The admin
// component is built before every other (it verifies tokens), and runs
// alone too: a peer's channel is asked for at its first call, and a peer
// that is not part of the mesh answers UNAVAILABLE naming the flag to set.
class MeshPipelinePeers final : public PipelinePeers {
 public:
  struct Options {
    // The channel to a component (in-process when co-hosted).
    std::function<std::shared_ptr<grpc::Channel>(const std::string&)> channel_to;
    // Whether a component is hosted here or given by --<component>_addr.
    std::function<bool(const std::string&)> reaches;
    MeshCredentialPtr mesh;
    std::chrono::milliseconds call_deadline;
  };
  explicit MeshPipelinePeers(Options options);

  bool Reaches(absl::string_view component) override;
  absl::StatusOr<std::string> ProjectOwner(const std::string& project_id) override;
  absl::StatusOr<std::vector<scheduler::v1::Task>> SchedulerTasks() override;
  absl::StatusOr<jobs::v1::Job> Scaffold(const std::string& act_for,
                                         const scaffolder::v1::ScaffoldRequest& req) override;
  absl::StatusOr<jobs::v1::Job> TriggerEngineering(
      const std::string& act_for, const engineering::v1::TriggerEngineeringRequest& req) override;
  absl::StatusOr<jobs::v1::Job> TriggerDeploy(const std::string& act_for,
                                              const deploy::v1::TriggerDeployRequest& req) override;
  absl::StatusOr<jobs::v1::Job> Rollback(const std::string& act_for,
                                         const deploy::v1::RollbackRequest& req) override;
  absl::StatusOr<jobs::v1::Job> ProvisionServer(
      const std::string& act_for, const infra::v1::ProvisionServerRequest& req) override;
  absl::StatusOr<jobs::v1::Job> RunTaskNow(const std::string& act_for,
                                           const scheduler::v1::RunTaskNowRequest& req) override;
  absl::StatusOr<jobs::v1::ClearProjectJobsResponse> ClearProjectJobs(
      const jobs::v1::ClearProjectJobsRequest& req) override;
  absl::StatusOr<std::vector<std::string>> AwaitJobsEnded(const std::vector<std::string>& job_ids,
                                                          absl::Time deadline) override;
  absl::StatusOr<int64_t> DropJobNotifications(const std::vector<std::string>& job_ids) override;

 private:
  // OK when `component` is part of the mesh, else UNAVAILABLE saying so.
  absl::Status Reachable(const std::string& component);
  template <typename Service>
  LazyStub<Service> StubOf(const std::string& component) {
    return LazyStub<Service>([channel_to = options_.channel_to, component] {
      return Service::NewStub(channel_to(component));
    });
  }

  const Options options_;
  LazyStub<projects::v1::ProjectService> projects_;
  LazyStub<jobs::v1::JobService> jobs_;
  LazyStub<sessions::v1::SessionService> sessions_;
  LazyStub<scaffolder::v1::ScaffolderService> scaffolder_;
  LazyStub<engineering::v1::EngineeringService> engineering_;
  LazyStub<deploy::v1::DeployService> deploy_;
  LazyStub<infra::v1::InfraService> infra_;
  LazyStub<scheduler::v1::SchedulerService> scheduler_;
};

}  // namespace orchestrator::admin
