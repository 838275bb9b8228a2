// DeployService over a whole mesh with the real parts: Podman's Docker
// Engine API, Caddy through its admin API, the local git host. A
// scaffolded template is deployed and reached through Caddy by its host
// name; a new commit replaces it; a broken commit fails its health gate
// and the live release stays; a rollback brings an earlier image back
// without a build; a Caddy that lost its config gets the routes back.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "clients/cli/app.h"
#include "orchestrator/deploy/v1/deploy.grpc.pb.h"
#include "orchestrator/infra/v1/infra.grpc.pb.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "orchestrator/scaffolder/v1/scaffolder.grpc.pb.h"
#include "services/common/containers/docker_engine.h"
#include "services/common/pagination/page_token.h"
#include "services/common/router/caddy_router.h"
#include "tests/integration/deploy/deploy_fixture.h"
#include "tests/support/caddy_process.h"
#include "tests/support/free_port.h"
#include "tests/support/job_wait.h"
#include "tests/support/podman_service.h"
#include "tests/support/run_git.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_mesh.h"

namespace orchestrator {
namespace {
using testing::CaddyProcess;
using testing::FreePort;
using ::testing::HasSubstr;
using testing::PodmanService;
using testing::TempDir;
using testing::TestMesh;

using testing::Answer;
using testing::Get;

class DeployTest : public testing::DeployFixture {};

TEST_F(DeployTest, AScaffoldedProjectIsReadyDeployedAndServedThroughCaddy) {
  const std::string shop = ScaffoldedProject("shop");
  deploy::v1::CheckReadinessRequest check;
  check.set_project_id(shop);
  deploy::v1::CheckReadinessResponse ready;
  grpc::Status s = deploy_->CheckReadiness(TestMesh::Context(token_).get(), check, &ready);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(ready.ready()) << ready.DebugString();
  std::vector<std::string> names;
  for (const auto& c : ready.checks()) names.push_back(c.name());
  EXPECT_THAT(names, ::testing::IsSupersetOf({"repository", "commit", "run_contract", "secrets",
                                              "allocation", "container_engine", "router",
                                              "no_deploy_running"}));

  const auto job = Deploy(shop);
  ASSERT_EQ(job.state(), jobs::v1::JOB_STATE_SUCCEEDED) << LogOf(shop, job.id());
  const std::string url = Field(job, "url");
  EXPECT_THAT(url, HasSubstr(absl::StrCat(":", router_port_)));
  const Answer page = Get(router_port_, HostOf(url));
  EXPECT_EQ(page.status, 200);
  EXPECT_THAT(page.body, HasSubstr("Shop v1"));
  EXPECT_EQ(Get(router_port_, HostOf(url), "/healthz").status, 200);

  const auto releases = Releases(shop);
  ASSERT_EQ(releases.size(), 1u);
  EXPECT_EQ(releases[0].status(), deploy::v1::RELEASE_STATUS_LIVE);
  EXPECT_EQ(releases[0].url(), url);
  EXPECT_EQ(releases[0].version(), 1);
  auto running = engine_->ListContainers({{"orchestrator.project", shop}}, false);
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(running->size(), 1u);

  // The CLI shows the deploy's log, and follows its job from the start.
  cli::Environment env;
  env.vars["ORCHESTRATOR_ADDR"] = mesh_.address();
  env.vars["ORCHESTRATOR_TOKEN"] = token_;
  std::ostringstream out, err;
  EXPECT_EQ(cli::Run({"deploy", "logs", shop}, env, out, err), 0) << err.str();
  EXPECT_THAT(out.str(), HasSubstr("build: "));
  std::ostringstream followed, followed_err;
  EXPECT_EQ(cli::Run({"deploy", "logs", shop, "--follow"}, env, followed, followed_err), 0)
      << followed_err.str();
  EXPECT_THAT(followed.str(), HasSubstr(absl::StrCat("following job ", job.id())));
  EXPECT_THAT(followed.str(), HasSubstr("running → succeeded"));
}

TEST_F(DeployTest, ANewCommitReplacesTheLiveReleaseAndABrokenOneLeavesItLive) {
  const std::string shop = ScaffoldedProject("shop");
  ASSERT_EQ(Deploy(shop).state(), jobs::v1::JOB_STATE_SUCCEEDED);
  const std::string first_url = Releases(shop)[0].url();
  const std::string host = HostOf(first_url);

  PushChange(shop, {{"README.md", "# v2\n"}}, "v2");
  // The service title lives in its config; a new commit shows it.
  const auto second = Deploy(shop);
  ASSERT_EQ(second.state(), jobs::v1::JOB_STATE_SUCCEEDED) << second.error().message();
  auto releases = Releases(shop);
  ASSERT_EQ(releases.size(), 2u);
  EXPECT_EQ(releases[0].status(), deploy::v1::RELEASE_STATUS_LIVE);
  EXPECT_EQ(releases[1].status(), deploy::v1::RELEASE_STATUS_SUPERSEDED);
  EXPECT_NE(releases[0].port(), releases[1].port()) << "started next to the live one";
  EXPECT_EQ(Get(router_port_, host).status, 200);
  auto running = engine_->ListContainers({{"orchestrator.project", shop}}, true);
  ASSERT_TRUE(running.ok());
  ASSERT_EQ(running->size(), 1u) << "the old container is gone";
  EXPECT_EQ(running->at(0).name, releases[0].container_name());

  // A commit whose server dies at once: its health gate fails (and, with
  // the project's fixes off, that is all).
  SetDeployFix(shop, projects::v1::DEPLOY_FIX_OFF);
  PushChange(shop, {{"app.py", "import sys\nprint('boom: no config', flush=True)\nsys.exit(3)\n"}},
             "broken");
  const auto broken = Deploy(shop);
  EXPECT_EQ(broken.state(), jobs::v1::JOB_STATE_FAILED);
  EXPECT_THAT(broken.error().message(), HasSubstr("health gate"));
  EXPECT_THAT(broken.error().message(), HasSubstr("boom: no config"));
  EXPECT_THAT(broken.error().message(), ::testing::Not(HasSubstr("fix")));
  EXPECT_TRUE(JobsOf(shop, "deploy.fix").empty()) << "fixes are off for the project";
  releases = Releases(shop);
  ASSERT_EQ(releases.size(), 3u);
  EXPECT_EQ(releases[0].status(), deploy::v1::RELEASE_STATUS_FAILED);
  EXPECT_EQ(releases[1].status(), deploy::v1::RELEASE_STATUS_LIVE);
  EXPECT_EQ(Get(router_port_, host).status, 200) << "the live release still serves";
}

TEST_F(DeployTest, ARollbackBringsTheEarlierImageBackWithoutABuild) {
  const std::string shop = ScaffoldedProject("shop");
  ASSERT_EQ(Deploy(shop).state(), jobs::v1::JOB_STATE_SUCCEEDED);
  PushChange(shop, {{"README.md", "# v2\n"}}, "v2");
  ASSERT_EQ(Deploy(shop).state(), jobs::v1::JOB_STATE_SUCCEEDED);
  const auto before = Releases(shop);

  deploy::v1::RollbackRequest req;
  req.set_project_id(shop);
  deploy::v1::RollbackResponse resp;
  grpc::Status s = deploy_->Rollback(TestMesh::Context(token_).get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const auto job = Wait(resp.job().id());
  ASSERT_EQ(job.state(), jobs::v1::JOB_STATE_SUCCEEDED) << job.error().message();
  const auto after = Releases(shop);
  ASSERT_EQ(after.size(), 3u);
  EXPECT_EQ(after[0].status(), deploy::v1::RELEASE_STATUS_LIVE);
  EXPECT_EQ(after[0].rollback_of_release_id(), before[1].id());
  EXPECT_EQ(after[0].commit_sha(), before[1].commit_sha());
  EXPECT_EQ(after[0].image(), before[1].image());
  EXPECT_EQ(Get(router_port_, HostOf(after[0].url())).status, 200);

  deploy::v1::GetDeployLogsRequest logs;
  logs.set_project_id(shop);
  logs.set_job_id(job.id());
  deploy::v1::GetDeployLogsResponse lines;
  ASSERT_TRUE(deploy_->GetDeployLogs(TestMesh::Context(token_).get(), logs, &lines).ok());
  std::string all;
  for (const auto& l : lines.lines()) absl::StrAppend(&all, l.text(), "\n");
  EXPECT_THAT(all, HasSubstr("no build"));
  EXPECT_THAT(all, ::testing::Not(HasSubstr("build: ")));

  // The live one is not a rollback target.
  req.set_release_id(after[0].id());
  EXPECT_EQ(deploy_->Rollback(TestMesh::Context(token_).get(), req, &resp).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(DeployTest, ACaddyThatLostItsConfigGetsTheRoutesBack) {
  const std::string shop = ScaffoldedProject("shop");
  ASSERT_EQ(Deploy(shop).state(), jobs::v1::JOB_STATE_SUCCEEDED);
  const std::string host = HostOf(Releases(shop)[0].url());
  caddy_->Stop();
  ASSERT_TRUE(caddy_->Start()) << caddy_->log();
  int status = 0;
  for (int i = 0; i < 100 && status != 200; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    status = Get(router_port_, host).status;
  }
  EXPECT_EQ(status, 200) << "reconciled from the LIVE releases";
}

TEST_F(DeployTest, ThePortOfTheLiveReleaseIsReleasedOnlyWhenForced) {
  const std::string shop = ScaffoldedProject("shop");
  ASSERT_EQ(Deploy(shop).state(), jobs::v1::JOB_STATE_SUCCEEDED);
  const deploy::v1::Release live = Releases(shop)[0];
  auto infra = infra::v1::InfraService::NewStub(mesh_.channel());
  infra::v1::ListAllocationsRequest list;
  list.set_project_id(shop);
  infra::v1::ListAllocationsResponse allocations;
  ASSERT_TRUE(infra->ListAllocations(TestMesh::Context(token_).get(), list, &allocations).ok());
  std::string serving, spare;
  for (const auto& a : allocations.allocations()) {
    (a.port() == live.port() ? serving : spare) = a.id();
  }
  ASSERT_FALSE(serving.empty()) << allocations.DebugString();
  const auto release = [&](const std::string& id, bool force) {
    infra::v1::ReleaseAllocationRequest req;
    req.set_allocation_id(id);
    req.set_confirm(true);
    req.set_force(force);
    infra::v1::ReleaseAllocationResponse resp;
    return infra->ReleaseAllocation(TestMesh::Context(token_).get(), req, &resp);
  };
  grpc::Status refused = release(serving, false);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(refused.error_message(), HasSubstr("LIVE release"));
  EXPECT_THAT(refused.error_message(), HasSubstr("force"));
  EXPECT_EQ(Get(router_port_, HostOf(live.url())).status, 200) << "still served";
  if (!spare.empty()) {
    EXPECT_TRUE(release(spare, false).ok()) << "the port nothing live uses";
  }
  grpc::Status forced = release(serving, true);
  EXPECT_TRUE(forced.ok()) << forced.error_message();
}

// A container this installation did not make (another installation on the
// same engine, or one left behind) publishing a port the project was given:
// the deploy says which container holds it and what to do, and blames (and
// fixes) nothing of the project's; once it is gone the deploy goes live.
TEST_F(DeployTest, APortAnotherContainerPublishesIsRefusedNamingThatContainer) {
  const std::string shop = ScaffoldedProject("shop");
  ASSERT_EQ(Deploy(shop).state(), jobs::v1::JOB_STATE_SUCCEEDED);
  const std::string image = Releases(shop)[0].image();

  const std::string cafe = ScaffoldedProject("cafe");
  deploy::v1::CheckReadinessRequest check;
  check.set_project_id(cafe);
  deploy::v1::CheckReadinessResponse readiness;
  ASSERT_TRUE(deploy_->CheckReadiness(TestMesh::Context(token_).get(), check, &readiness).ok());
  auto infra = infra::v1::InfraService::NewStub(mesh_.channel());
  infra::v1::ListAllocationsRequest list;
  list.set_project_id(cafe);
  infra::v1::ListAllocationsResponse allocations;
  ASSERT_TRUE(infra->ListAllocations(TestMesh::Context(token_).get(), list, &allocations).ok());
  ASSERT_EQ(allocations.allocations_size(), 2) << allocations.DebugString();
  std::vector<std::string> squatters;
  for (const auto& a : allocations.allocations()) {
    containers::ContainerSpec spec;
    spec.name = absl::StrCat("squatter-", a.port());
    spec.image = image;
    // The image's own labels are this installation's: the squatter's say another.
    spec.labels = {{"orchestrator.installation", "ins_elsewhere"}};
    spec.container_port = 8080;
    spec.host_port = a.port();
    spec.env = {"PORT=8080"};
    ASSERT_TRUE(engine_->CreateContainer(spec).ok());
    ASSERT_TRUE(engine_->StartContainer(spec.name).ok());
    squatters.push_back(spec.name);
  }

  const auto refused = Deploy(cafe);
  EXPECT_EQ(refused.state(), jobs::v1::JOB_STATE_FAILED);
  EXPECT_THAT(refused.error().message(), HasSubstr("is published by container squatter-"));
  EXPECT_THAT(refused.error().message(), HasSubstr("of installation ins_elsewhere"));
  EXPECT_THAT(refused.error().message(), HasSubstr("podman rm -f squatter-"));
  EXPECT_THAT(refused.error().message(), ::testing::Not(HasSubstr("health gate")));
  EXPECT_TRUE(JobsOf(cafe, "deploy.fix").empty()) << "the project's code is not to blame";
  auto running = engine_->ListContainers({{"orchestrator.project", cafe}}, true);
  ASSERT_TRUE(running.ok());
  EXPECT_TRUE(running->empty()) << "nothing was started on the taken port";

  for (const auto& name : squatters) ASSERT_TRUE(engine_->RemoveContainer(name, true).ok());
  const auto deployed = Deploy(cafe);
  ASSERT_EQ(deployed.state(), jobs::v1::JOB_STATE_SUCCEEDED) << deployed.error().message();
  EXPECT_EQ(Get(router_port_, HostOf(Releases(cafe)[0].url())).status, 200);
}

TEST_F(DeployTest, NoRequestFailsDuringTenDeploysAndTenRollbacks) {
  // Caddy replaces its listeners on each change; without listener migration
  // Linux resets the connections queued on the old ones (tools/setup and
  // tools/up turn it on; so does this test, as root).
  if (!router::CheckListenerMigration().ok()) {
    std::ofstream(router::kListenerMigrationSysctl) << "1\n";
  }
  ASSERT_TRUE(router::CheckListenerMigration().ok()) << router::CheckListenerMigration();
  const std::string shop = ScaffoldedProject("shop");
  ASSERT_EQ(Deploy(shop).state(), jobs::v1::JOB_STATE_SUCCEEDED);
  const std::string host = HostOf(Releases(shop)[0].url());

  std::atomic<bool> done{false};
  std::atomic<int> answered{0};
  std::vector<std::string> failures;
  std::thread load([&] {
    while (!done) {
      const Answer a = Get(router_port_, host, "/healthz");
      if (a.status == 200) {
        ++answered;
      } else if (failures.size() < 20) {
        failures.push_back(absl::StrCat(a.status, " ", a.body.substr(0, 100)));
      }
    }
  });
  for (int i = 0; i < 10; ++i) {
    const auto deployed = Deploy(shop);
    EXPECT_EQ(deployed.state(), jobs::v1::JOB_STATE_SUCCEEDED) << deployed.error().message();
    deploy::v1::RollbackRequest req;
    req.set_project_id(shop);
    deploy::v1::RollbackResponse resp;
    ASSERT_TRUE(deploy_->Rollback(TestMesh::Context(token_).get(), req, &resp).ok());
    EXPECT_EQ(Wait(resp.job().id()).state(), jobs::v1::JOB_STATE_SUCCEEDED);
  }
  done = true;
  load.join();
  EXPECT_THAT(failures, ::testing::IsEmpty()) << answered << " answered 200";
  EXPECT_GT(answered, 100);
  EXPECT_EQ(Releases(shop).size(), 21u);
}

TEST_F(DeployTest, BadRequestsAreClearErrors) {
  projects::v1::CreateProjectRequest create;
  create.mutable_project()->set_name("empty");
  projects::v1::CreateProjectResponse created;
  ASSERT_TRUE(projects_->CreateProject(TestMesh::Context(token_).get(), create, &created).ok());
  deploy::v1::TriggerDeployRequest req;
  req.set_project_id(created.project().id());
  deploy::v1::TriggerDeployResponse resp;
  grpc::Status unready = deploy_->TriggerDeploy(TestMesh::Context(token_).get(), req, &resp);
  EXPECT_EQ(unready.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(unready.error_message(), HasSubstr("repository"));
  EXPECT_THAT(unready.error_message(), HasSubstr("scaffold"));

  auto [bob_id, bob] = mesh_.NewUser("bob");
  EXPECT_EQ(deploy_->TriggerDeploy(TestMesh::Context(bob).get(), req, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
  deploy::v1::GetReleaseRequest get;
  get.set_release_id("rel_nope");
  deploy::v1::GetReleaseResponse got;
  EXPECT_EQ(deploy_->GetRelease(TestMesh::Context(token_).get(), get, &got).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // A page token forged with the right filters but a key that is no
  // sequence or version: refused, and the process lives on.
  deploy::v1::GetDeployLogsRequest logs;
  logs.set_project_id(created.project().id());
  logs.set_job_id("job_x");
  logs.set_page_token(
      MakePageToken(absl::StrCat(created.project().id(), "|job_x"), {"99999999999999999999999"}));
  deploy::v1::GetDeployLogsResponse lines;
  EXPECT_NE(deploy_->GetDeployLogs(TestMesh::Context(token_).get(), logs, &lines).error_code(),
            grpc::StatusCode::OK);
  deploy::v1::ListReleasesRequest list;
  list.set_project_id(created.project().id());
  list.set_page_token(MakePageToken(absl::StrCat(created.project().id(), "|0"), {"x"}));
  deploy::v1::ListReleasesResponse listed;
  grpc::Status forged = deploy_->ListReleases(TestMesh::Context(token_).get(), list, &listed);
  EXPECT_EQ(forged.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << forged.error_message();
  EXPECT_THAT(forged.error_message(), HasSubstr("page_token"));
  list.clear_page_token();
  EXPECT_TRUE(deploy_->ListReleases(TestMesh::Context(token_).get(), list, &listed).ok())
      << "still serving";

  req.set_commit_sha("not-a-sha; rm -rf /");
  grpc::Status bad = deploy_->TriggerDeploy(TestMesh::Context(token_).get(), req, &resp);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad.error_message(), HasSubstr("commit_sha"));
}

}  // namespace
}  // namespace orchestrator
