// AdminService's pipeline steps end to end, over the whole mesh: the steps
// listed with their parameters, a step triggered as the component's own RPC
// for the project's owner, and a project's state cleared.
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/admin/v1/admin.grpc.pb.h"
#include "orchestrator/deploy/v1/deploy.grpc.pb.h"
#include "orchestrator/engineering/v1/engineering.grpc.pb.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "orchestrator/sessions/v1/sessions.grpc.pb.h"
#include "tests/support/job_wait.h"
#include "tests/support/test_mesh.h"

namespace orchestrator::admin {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using testing::TestMesh;
namespace jobs_v1 = ::orchestrator::jobs::v1;

class PipelineStepsTest : public ::testing::Test {
 protected:
  PipelineStepsTest()
      : mesh_("all", [](MeshConfig& c) { c.demo_jobs = true; }),
        admin_(v1::AdminService::NewStub(mesh_.channel())),
        jobs_(jobs_v1::JobService::NewStub(mesh_.channel())) {
    std::tie(alice_id_, alice_) = mesh_.NewUser("alice");
  }

  std::string CreateProject(const std::string& name) {
    auto projects = projects::v1::ProjectService::NewStub(mesh_.channel());
    projects::v1::CreateProjectRequest req;
    req.mutable_project()->set_name(name);
    projects::v1::CreateProjectResponse resp;
    grpc::Status s = projects->CreateProject(TestMesh::Context(alice_).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.project().id();
  }

  grpc::Status Trigger(const std::string& token, const std::string& project,
                       const std::string& step, const std::map<std::string, std::string>& params,
                       const std::string& request_id, jobs_v1::Job* job) {
    v1::TriggerStepRequest req;
    req.set_project_id(project);
    req.set_step(step);
    req.set_request_id(request_id);
    for (const auto& [k, v] : params) (*req.mutable_parameters())[k] = v;
    v1::TriggerStepResponse resp;
    grpc::Status s = admin_->TriggerStep(TestMesh::Context(token).get(), req, &resp);
    *job = resp.job();
    return s;
  }

  grpc::Status Clear(const std::string& token, const std::string& project, bool confirm,
                     v1::ClearProjectStateResponse* resp) {
    v1::ClearProjectStateRequest req;
    req.set_project_id(project);
    req.set_confirm(confirm);
    auto ctx = TestMesh::Context(token);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return admin_->ClearProjectState(ctx.get(), req, resp);
  }

  std::string EnqueueDemo(const std::string& project, const std::string& kind,
                          const std::map<std::string, std::string>& text_params,
                          double seconds = 0) {
    jobs_v1::EnqueueDemoJobRequest req;
    req.set_kind(kind);
    req.set_project_id(project);
    req.set_max_attempts(1);
    for (const auto& [k, v] : text_params) {
      (*req.mutable_params()->mutable_fields())[k].set_string_value(v);
    }
    if (seconds > 0) {
      (*req.mutable_params()->mutable_fields())["seconds"].set_number_value(seconds);
      (*req.mutable_params()->mutable_fields())["steps"].set_number_value(seconds);
    }
    jobs_v1::EnqueueDemoJobResponse resp;
    grpc::Status s = jobs_->EnqueueDemoJob(TestMesh::Context(alice_).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.job().id();
  }

  int64_t EventCount(const std::string& job_id) {
    jobs_v1::ListJobEventsRequest req;
    req.set_job_id(job_id);
    req.set_page_size(1000);
    jobs_v1::ListJobEventsResponse resp;
    EXPECT_TRUE(jobs_->ListJobEvents(TestMesh::Context(alice_).get(), req, &resp).ok());
    return resp.events_size();
  }

  std::vector<std::string> ProjectJobs(const std::string& project) {
    jobs_v1::ListJobsRequest req;
    req.set_project_id(project);
    jobs_v1::ListJobsResponse resp;
    EXPECT_TRUE(jobs_->ListJobs(TestMesh::Context(mesh_.admin_token()).get(), req, &resp).ok());
    std::vector<std::string> ids;
    for (const auto& j : resp.jobs()) ids.push_back(j.id());
    return ids;
  }

  TestMesh mesh_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  std::unique_ptr<jobs_v1::JobService::Stub> jobs_;
  std::string alice_id_, alice_;
};

TEST_F(PipelineStepsTest, ListsTheStepsAnAdminCanTriggerWithTheirParameters) {
  v1::ListPipelineStepsResponse resp;
  grpc::Status s =
      admin_->ListPipelineSteps(TestMesh::Context(mesh_.admin_token()).get(), {}, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::map<std::string, v1::PipelineStep> steps;
  for (const auto& step : resp.steps()) steps[step.name()] = step;
  for (const char* name : {"scaffold", "engineering", "deploy", "rollback", "provision"}) {
    EXPECT_TRUE(steps.contains(name)) << name;
  }
  EXPECT_EQ(steps["engineering"].job_kind(), "engineering");
  EXPECT_TRUE(steps["engineering"].per_project());
  ASSERT_GE(steps["engineering"].parameters_size(), 1);
  EXPECT_EQ(steps["engineering"].parameters(0).name(), "instructions");
  EXPECT_TRUE(steps["engineering"].parameters(0).required());
  EXPECT_EQ(steps["rollback"].parameters(0).name(), "release_id");
  EXPECT_FALSE(steps["rollback"].parameters(0).required());
  EXPECT_FALSE(steps["provision"].per_project());
  EXPECT_EQ(steps["provision"].component(), "infra");
  // The scheduler's tasks are steps "task:<id>" when it answers; else a
  // note says why they are missing.
  bool tasks = false;
  for (const auto& [name, step] : steps) tasks = tasks || name.starts_with("task:");
  if (!tasks) {
    EXPECT_THAT(resp.notes(), Contains(HasSubstr("scheduler")));
  }

  EXPECT_EQ(admin_->ListPipelineSteps(TestMesh::Context(alice_).get(), {}, &resp).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(PipelineStepsTest, ATriggeredStepIsTheJobTheComponentsOwnRpcEnqueuesForTheOwner) {
  const std::string project = CreateProject("shop");
  const std::string admin = mesh_.admin_token();
  jobs_v1::Job scaffold;
  grpc::Status s = Trigger(admin, project, "scaffold", {{"template_id", "static-site"}},
                           "admin-scaffold-1", &scaffold);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(scaffold.kind(), "scaffold");
  EXPECT_EQ(scaffold.owner_id(), alice_id_);
  EXPECT_EQ(scaffold.project_id(), project);
  jobs_v1::Job again;
  ASSERT_TRUE(Trigger(admin, project, "scaffold", {{"template_id", "static-site"}},
                      "admin-scaffold-1", &again)
                  .ok());
  EXPECT_EQ(again.id(), scaffold.id());
  // Alice's own job: she sees it, and it gives her project its repository.
  scaffold = testing::WaitForJob(*jobs_, alice_, scaffold.id());
  ASSERT_EQ(scaffold.state(), jobs_v1::JOB_STATE_SUCCEEDED) << scaffold.ShortDebugString();

  // Engineering: the same job alice's own TriggerEngineering with that
  // request_id returns.
  jobs_v1::Job engineering;
  s = Trigger(admin, project, "engineering",
              {{"instructions", "add a /version page"}, {"max_iterations", "1"}}, "admin-eng-1",
              &engineering);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(engineering.kind(), "engineering");
  EXPECT_EQ(engineering.owner_id(), alice_id_);
  auto eng_stub = engineering::v1::EngineeringService::NewStub(mesh_.channel());
  engineering::v1::TriggerEngineeringRequest own;
  own.set_project_id(project);
  own.set_instructions("add a /version page");
  own.set_max_iterations(1);
  own.set_request_id("admin-eng-1");
  engineering::v1::TriggerEngineeringResponse own_resp;
  s = eng_stub->TriggerEngineering(TestMesh::Context(alice_).get(), own, &own_resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(own_resp.job().id(), engineering.id());
  jobs_v1::CancelJobRequest cancel;
  cancel.set_job_id(engineering.id());
  jobs_v1::CancelJobResponse cancelled;
  (void)jobs_->CancelJob(TestMesh::Context(alice_).get(), cancel, &cancelled);

  // Deploy: whatever alice's own TriggerDeploy answers (this mesh has no
  // container engine), the step answers too.
  jobs_v1::Job deployed;
  s = Trigger(admin, project, "deploy", {}, "admin-deploy-1", &deployed);
  auto deploy_stub = deploy::v1::DeployService::NewStub(mesh_.channel());
  deploy::v1::TriggerDeployRequest own_deploy;
  own_deploy.set_project_id(project);
  own_deploy.set_request_id("admin-deploy-1");
  deploy::v1::TriggerDeployResponse own_deployed;
  grpc::Status own_s =
      deploy_stub->TriggerDeploy(TestMesh::Context(alice_).get(), own_deploy, &own_deployed);
  EXPECT_EQ(s.error_code(), own_s.error_code())
      << s.error_message() << " / " << own_s.error_message();
  if (s.ok() && own_s.ok()) {
    EXPECT_EQ(deployed.id(), own_deployed.job().id());
    EXPECT_EQ(deployed.kind(), "deploy");
  }
}

TEST_F(PipelineStepsTest, BadStepsParametersAndCallersAreRefusedNamingWhatToFix) {
  const std::string project = CreateProject("shop");
  const std::string admin = mesh_.admin_token();
  jobs_v1::Job job;
  grpc::Status s = Trigger(admin, project, "no-such-step", {}, "", &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("no-such-step"));

  s = Trigger(admin, project, "engineering", {}, "", &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("instructions"));

  s = Trigger(admin, project, "deploy", {{"colour", "blue"}}, "", &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("colour"));

  s = Trigger(admin, project, "engineering", {{"instructions", "x"}, {"max_iterations", "11"}}, "",
              &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("max_iterations"));

  s = Trigger(admin, "prj_nope", "deploy", {}, "", &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);

  s = Trigger(admin, "", "deploy", {}, "", &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("project_id"));

  s = Trigger(admin, project, "provision", {{"server_id", "local"}}, "", &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("not per project"));

  // Her own project, but not an admin.
  s = Trigger(alice_, project, "deploy", {}, "", &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

// Reads a job's events from the start until its stream ends; the state it
// ended in and how many events it had.
struct Watched {
  jobs_v1::JobState last_state = jobs_v1::JOB_STATE_UNSPECIFIED;
  int64_t events = 0;
};

TEST_F(PipelineStepsTest, ClearingAProjectCancelsItsJobsDeletesThemAndDropsTheirNotifications) {
  const std::string a = CreateProject("shop");
  const std::string b = CreateProject("blog");
  const std::string admin = mesh_.admin_token();
  auto sessions = sessions::v1::SessionService::NewStub(mesh_.channel());
  grpc::ClientContext watch_notes;
  watch_notes.AddMetadata("authorization", "Bearer " + alice_);
  watch_notes.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto notes = sessions->WatchNotifications(&watch_notes, {});

  // Project a: a job that ended, one asking for a human (its owner is told),
  // and one running; project b: one asking for a human.
  const std::map<std::string, std::string> escalate = {
      {"code", "FAILED_PRECONDITION"}, {"message", "needs a human: the port is taken"}};
  const std::string a_done = EnqueueDemo(a, "demo.noop", {});
  const std::string a_failed = EnqueueDemo(a, "demo.fail", escalate);
  const std::string b_failed = EnqueueDemo(b, "demo.fail", escalate);
  const std::string a_running = EnqueueDemo(a, "demo.sleep", {}, 120);
  std::set<std::string> told;
  sessions::v1::WatchNotificationsResponse n;
  while (told.size() < 2 && notes->Read(&n)) told.insert(n.notification().job_id());
  EXPECT_EQ(told, (std::set<std::string>{a_failed, b_failed}));
  watch_notes.TryCancel();
  (void)notes->Finish();
  EXPECT_EQ(testing::WaitForJob(*jobs_, alice_, a_done).state(), jobs_v1::JOB_STATE_SUCCEEDED);

  // Until the sleeping job runs (its first progress), then until it ends.
  Watched watched;
  absl::Notification running;
  std::thread watcher([&] {
    jobs_v1::WatchJobRequest req;
    req.set_job_id(a_running);
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + alice_);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto reader = jobs_->WatchJob(&ctx, req);
    jobs_v1::WatchJobResponse e;
    while (reader->Read(&e)) {
      watched.events = e.event().sequence();
      if (e.event().has_state_changed()) watched.last_state = e.event().state_changed().to_state();
      if (e.event().has_progress() && !running.HasBeenNotified()) running.Notify();
    }
    (void)reader->Finish();
    if (!running.HasBeenNotified()) running.Notify();
  });
  running.WaitForNotification();
  const int64_t ended_events = EventCount(a_done) + EventCount(a_failed);

  v1::ClearProjectStateResponse resp;
  grpc::Status s = Clear(admin, a, false, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("confirm"));
  EXPECT_EQ(Clear(alice_, a, true, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Clear(admin, "prj_nope", true, &resp).error_code(), grpc::StatusCode::NOT_FOUND);

  s = Clear(admin, a, true, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  watcher.join();
  EXPECT_EQ(watched.last_state, jobs_v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(resp.jobs_cancelled(), 1);
  EXPECT_EQ(resp.jobs_deleted(), 3);
  EXPECT_EQ(resp.events_deleted(), ended_events + watched.events);
  EXPECT_EQ(resp.notifications_dropped(), 1);
  EXPECT_TRUE(resp.jobs_still_running().empty());
  EXPECT_FALSE(resp.cleared().empty());

  // Project a's jobs and events are gone; project b's are untouched.
  EXPECT_TRUE(ProjectJobs(a).empty());
  jobs_v1::GetJobRequest get;
  get.set_job_id(a_running);
  jobs_v1::GetJobResponse got;
  EXPECT_EQ(jobs_->GetJob(TestMesh::Context(alice_).get(), get, &got).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ProjectJobs(b), std::vector<std::string>{b_failed});

  // Only the notification about project b's job is replayed.
  grpc::ClientContext replay_ctx;
  replay_ctx.AddMetadata("authorization", "Bearer " + alice_);
  replay_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  auto replay = sessions->WatchNotifications(&replay_ctx, {});
  std::vector<std::string> replayed;
  while (replay->Read(&n)) replayed.push_back(n.notification().job_id());
  (void)replay->Finish();
  EXPECT_EQ(replayed, std::vector<std::string>{b_failed});

  // Clearing again finds nothing left.
  s = Clear(admin, a, true, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.jobs_cancelled(), 0);
  EXPECT_EQ(resp.jobs_deleted(), 0);
  EXPECT_EQ(resp.notifications_dropped(), 0);
}

}  // namespace
}  // namespace orchestrator::admin
