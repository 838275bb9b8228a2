#include "services/admin/peers/mesh_pipeline_peers.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "services/common/peers/mesh_call.h"
#include "services/common/peers/project_secrets.h"
#include "services/common/status/status.h"

namespace orchestrator::admin {
namespace {

// Pages of the scheduler's tasks read at most (500 each).
constexpr int kMaxTaskPages = 20;
// What one DropJobNotifications names at most (its request's bound).
constexpr size_t kDropBatch = 1000;

std::string PeerName(absl::string_view component) {
  return absl::StrCat("the ", component, " component");
}

// One unary call as the mesh (acting for `act_for` when set), with the
// deadline every call between components has.
template <typename Response, typename Invoke>
absl::StatusOr<Response> CallAs(const MeshCredential& mesh, std::chrono::milliseconds deadline,
                                const std::string& act_for, absl::string_view component,
                                Invoke invoke) {
  grpc::ClientContext ctx;
  PrepareMeshCall(ctx, mesh, deadline, act_for);
  Response resp;
  if (grpc::Status s = invoke(&ctx, &resp); !s.ok()) {
    return FromPeerStatus(s, PeerName(component));
  }
  return resp;
}

}  // namespace

MeshPipelinePeers::MeshPipelinePeers(Options options)
    : options_(std::move(options)),
      projects_(StubOf<projects::v1::ProjectService>("projects")),
      jobs_(StubOf<jobs::v1::JobService>("jobs")),
      sessions_(StubOf<sessions::v1::SessionService>("sessions")),
      scaffolder_(StubOf<scaffolder::v1::ScaffolderService>("scaffolder")),
      engineering_(StubOf<engineering::v1::EngineeringService>("engineering")),
      deploy_(StubOf<deploy::v1::DeployService>("deploy")),
      infra_(StubOf<infra::v1::InfraService>("infra")),
      scheduler_(StubOf<scheduler::v1::SchedulerService>("scheduler")) {}

bool MeshPipelinePeers::Reaches(absl::string_view component) {
  return options_.reaches(std::string(component));
}

absl::Status MeshPipelinePeers::Reachable(const std::string& component) {
  if (options_.reaches(component)) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(PeerName(component),
                                             " is not part of this mesh: host it with admin "
                                             "(--services) or give --",
                                             component, "_addr"));
}

absl::StatusOr<std::string> MeshPipelinePeers::ProjectOwner(const std::string& project_id) {
  if (auto s = Reachable("projects"); !s.ok()) return s;
  // As the mesh itself, which sees every owner's projects.
  auto project = GetProjectAs(*projects_, *options_.mesh, options_.call_deadline, "", project_id);
  if (!project.ok()) return project.status();
  return project->owner_id();
}

absl::StatusOr<std::vector<scheduler::v1::Task>> MeshPipelinePeers::SchedulerTasks() {
  if (auto s = Reachable("scheduler"); !s.ok()) return s;
  std::vector<scheduler::v1::Task> tasks;
  scheduler::v1::ListTasksRequest req;
  req.set_page_size(500);
  for (int page = 0; page < kMaxTaskPages; ++page) {
    auto resp = CallAs<scheduler::v1::ListTasksResponse>(
        *options_.mesh, options_.call_deadline, "", "scheduler",
        [&](grpc::ClientContext* ctx, scheduler::v1::ListTasksResponse* r) {
          return (*scheduler_).ListTasks(ctx, req, r);
        });
    if (!resp.ok()) return resp.status();
    for (auto& t : *resp->mutable_tasks()) tasks.push_back(std::move(t));
    if (resp->next_page_token().empty()) break;
    req.set_page_token(resp->next_page_token());
  }
  return tasks;
}

absl::StatusOr<jobs::v1::Job> MeshPipelinePeers::Scaffold(
    const std::string& act_for, const scaffolder::v1::ScaffoldRequest& req) {
  if (auto s = Reachable("scaffolder"); !s.ok()) return s;
  auto resp = CallAs<scaffolder::v1::ScaffoldResponse>(
      *options_.mesh, options_.call_deadline, act_for, "scaffolder",
      [&](grpc::ClientContext* ctx, scaffolder::v1::ScaffoldResponse* r) {
        return (*scaffolder_).Scaffold(ctx, req, r);
      });
  if (!resp.ok()) return resp.status();
  return std::move(*resp->mutable_job());
}

absl::StatusOr<jobs::v1::Job> MeshPipelinePeers::TriggerEngineering(
    const std::string& act_for, const engineering::v1::TriggerEngineeringRequest& req) {
  if (auto s = Reachable("engineering"); !s.ok()) return s;
  auto resp = CallAs<engineering::v1::TriggerEngineeringResponse>(
      *options_.mesh, options_.call_deadline, act_for, "engineering",
      [&](grpc::ClientContext* ctx, engineering::v1::TriggerEngineeringResponse* r) {
        return (*engineering_).TriggerEngineering(ctx, req, r);
      });
  if (!resp.ok()) return resp.status();
  return std::move(*resp->mutable_job());
}

absl::StatusOr<jobs::v1::Job> MeshPipelinePeers::TriggerDeploy(
    const std::string& act_for, const deploy::v1::TriggerDeployRequest& req) {
  if (auto s = Reachable("deploy"); !s.ok()) return s;
  auto resp = CallAs<deploy::v1::TriggerDeployResponse>(
      *options_.mesh, options_.call_deadline, act_for, "deploy",
      [&](grpc::ClientContext* ctx, deploy::v1::TriggerDeployResponse* r) {
        return (*deploy_).TriggerDeploy(ctx, req, r);
      });
  if (!resp.ok()) return resp.status();
  return std::move(*resp->mutable_job());
}

absl::StatusOr<jobs::v1::Job> MeshPipelinePeers::Rollback(const std::string& act_for,
                                                          const deploy::v1::RollbackRequest& req) {
  if (auto s = Reachable("deploy"); !s.ok()) return s;
  auto resp = CallAs<deploy::v1::RollbackResponse>(
      *options_.mesh, options_.call_deadline, act_for, "deploy",
      [&](grpc::ClientContext* ctx, deploy::v1::RollbackResponse* r) {
        return (*deploy_).Rollback(ctx, req, r);
      });
  if (!resp.ok()) return resp.status();
  return std::move(*resp->mutable_job());
}

absl::StatusOr<jobs::v1::Job> MeshPipelinePeers::ProvisionServer(
    const std::string& act_for, const infra::v1::ProvisionServerRequest& req) {
  if (auto s = Reachable("infra"); !s.ok()) return s;
  auto resp = CallAs<infra::v1::ProvisionServerResponse>(
      *options_.mesh, options_.call_deadline, act_for, "infra",
      [&](grpc::ClientContext* ctx, infra::v1::ProvisionServerResponse* r) {
        return (*infra_).ProvisionServer(ctx, req, r);
      });
  if (!resp.ok()) return resp.status();
  return std::move(*resp->mutable_job());
}

absl::StatusOr<jobs::v1::Job> MeshPipelinePeers::RunTaskNow(
    const std::string& act_for, const scheduler::v1::RunTaskNowRequest& req) {
  if (auto s = Reachable("scheduler"); !s.ok()) return s;
  auto resp = CallAs<scheduler::v1::RunTaskNowResponse>(
      *options_.mesh, options_.call_deadline, act_for, "scheduler",
      [&](grpc::ClientContext* ctx, scheduler::v1::RunTaskNowResponse* r) {
        return (*scheduler_).RunTaskNow(ctx, req, r);
      });
  if (!resp.ok()) return resp.status();
  return std::move(*resp->mutable_job());
}

absl::StatusOr<jobs::v1::ClearProjectJobsResponse> MeshPipelinePeers::ClearProjectJobs(
    const jobs::v1::ClearProjectJobsRequest& req) {
  if (auto s = Reachable("jobs"); !s.ok()) return s;
  return CallAs<jobs::v1::ClearProjectJobsResponse>(
      *options_.mesh, options_.call_deadline, "", "jobs",
      [&](grpc::ClientContext* ctx, jobs::v1::ClearProjectJobsResponse* r) {
        return (*jobs_).ClearProjectJobs(ctx, req, r);
      });
}

absl::StatusOr<std::vector<std::string>> MeshPipelinePeers::AwaitJobsEnded(
    const std::vector<std::string>& job_ids, absl::Time deadline) {
  if (auto s = Reachable("jobs"); !s.ok()) return s;
  std::vector<std::string> still;
  for (const std::string& id : job_ids) {
    jobs::v1::GetJobRequest get;
    get.set_job_id(id);
    auto job = CallAs<jobs::v1::GetJobResponse>(
        *options_.mesh, options_.call_deadline, "", "jobs",
        [&](grpc::ClientContext* ctx, jobs::v1::GetJobResponse* r) {
          return (*jobs_).GetJob(ctx, get, r);
        });
    if (absl::IsNotFound(job.status())) continue;  // gone already
    if (!job.ok()) return job.status();
    const auto state = job->job().state();
    if (state != jobs::v1::JOB_STATE_QUEUED && state != jobs::v1::JOB_STATE_RUNNING) continue;
    if (absl::Now() >= deadline) {
      still.push_back(id);
      continue;
    }
    // WatchJob ends right after the job's terminal event.
    grpc::ClientContext ctx;
    PrepareMeshCall(ctx, *options_.mesh, options_.call_deadline);
    ctx.set_deadline(absl::ToChronoTime(deadline));
    jobs::v1::WatchJobRequest watch;
    watch.set_job_id(id);
    watch.set_after_sequence(job->job().last_event_sequence());
    auto reader = (*jobs_).WatchJob(&ctx, watch);
    jobs::v1::WatchJobResponse event;
    while (reader->Read(&event)) {
    }
    grpc::Status s = reader->Finish();
    if (s.ok() || s.error_code() == grpc::StatusCode::NOT_FOUND) continue;
    if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      still.push_back(id);
      continue;
    }
    return FromPeerStatus(s, PeerName("jobs"));
  }
  return still;
}

absl::StatusOr<int64_t> MeshPipelinePeers::DropJobNotifications(
    const std::vector<std::string>& job_ids) {
  if (auto s = Reachable("sessions"); !s.ok()) return s;
  int64_t dropped = 0;
  // No ids: one empty call, which tells whether the component answers.
  size_t first = 0;
  do {
    sessions::v1::DropJobNotificationsRequest req;
    for (size_t i = first; i < std::min(job_ids.size(), first + kDropBatch); ++i) {
      req.add_job_ids(job_ids[i]);
    }
    auto resp = CallAs<sessions::v1::DropJobNotificationsResponse>(
        *options_.mesh, options_.call_deadline, "", "sessions",
        [&](grpc::ClientContext* ctx, sessions::v1::DropJobNotificationsResponse* r) {
          return (*sessions_).DropJobNotifications(ctx, req, r);
        });
    if (!resp.ok()) return resp.status();
    dropped += resp->notifications_dropped();
    first += kDropBatch;
  } while (first < job_ids.size());
  return dropped;
}

}  // namespace orchestrator::admin
