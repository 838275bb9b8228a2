// The deploy feedback loop, with the real parts (Podman, Caddy, the local
// git host, the scripted developer agent in its sandbox): a deploy that
// fails its health gate becomes one engineering run whose task carries the
// failure; its change, tested and pushed, is deployed again, and the owner
// is told each step. A fix that does not help is tried once: the live
// release stays. (A project with fixes off: deploy_test; a rollback's fix:
// the same path, started by the release watch.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "orchestrator/sessions/v1/sessions.grpc.pb.h"
#include "tests/integration/deploy/deploy_fixture.h"

namespace orchestrator {
namespace {
using testing::Answer;
using testing::Get;
using ::testing::HasSubstr;
using testing::TestMesh;

// A service that exits at once: what a careless change does.
constexpr char kExitsAtOnce[] = "import sys\nprint('boom: no config', flush=True)\nsys.exit(3)\n";

class DeployFixTest : public testing::DeployFixture {
 protected:
  DeployFixTest() : sessions_(sessions::v1::SessionService::NewStub(mesh_.channel())) {}

  // The project's newest job of `kind` once it ended (it may not exist yet).
  jobs::v1::Job Ended(const std::string& project_id, const std::string& kind) {
    const absl::Time deadline = absl::Now() + absl::Seconds(180);
    while (absl::Now() < deadline) {
      auto found = JobsOf(project_id, kind);
      if (!found.empty()) return Wait(found.front().id());
      absl::SleepFor(absl::Milliseconds(200));
    }
    ADD_FAILURE() << "no " << kind << " job of " << project_id;
    return {};
  }

  // The notifications' texts until one is about `job_id`.
  std::string ToldUntil(const std::string& job_id) {
    auto watch = TestMesh::Context(token_);
    watch->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto reader = sessions_->WatchNotifications(watch.get(), {});
    sessions::v1::WatchNotificationsResponse n;
    std::string all;
    while (reader->Read(&n)) {
      absl::StrAppend(&all, n.notification().text(), "\n");
      if (n.notification().job_id() == job_id) break;
    }
    watch->TryCancel();
    reader->Finish();
    return all;
  }

  std::unique_ptr<sessions::v1::SessionService::Stub> sessions_;
};

TEST_F(DeployFixTest, ADeployThatFailsItsGateIsFixedByOneRunAndDeployedAgain) {
  const std::string shop = ScaffoldedProject("shop");
  ASSERT_EQ(Deploy(shop).state(), jobs::v1::JOB_STATE_SUCCEEDED);
  const deploy::v1::Release good = Releases(shop)[0];
  const std::string host = HostOf(good.url());

  const std::string broken_sha = PushChange(shop, {{"app.py", kExitsAtOnce}}, "careless");
  const auto broken = Deploy(shop);
  ASSERT_EQ(broken.state(), jobs::v1::JOB_STATE_FAILED);
  EXPECT_THAT(broken.error().message(), HasSubstr("health gate failed"));
  EXPECT_THAT(broken.error().message(), HasSubstr("The platform started a fix (job "));

  // The fix: a job of the platform's, started by the failed deploy.
  const auto fix = Ended(shop, "deploy.fix");
  ASSERT_EQ(fix.state(), jobs::v1::JOB_STATE_SUCCEEDED) << fix.error().message();
  EXPECT_THAT(broken.error().message(), HasSubstr(fix.id()));
  EXPECT_EQ(fix.owner_id(), user_id_);
  EXPECT_EQ(fix.origin().kind(), jobs::v1::JOB_ORIGIN_KIND_JOB);
  EXPECT_EQ(fix.origin().job_id(), broken.id());
  EXPECT_EQ(fix.origin().actor(), "platform");

  // Its engineering run was told what failed, and what was last good.
  const auto run = Wait(Field(fix, "engineering_job_id"));
  ASSERT_EQ(run.state(), jobs::v1::JOB_STATE_SUCCEEDED) << run.error().message();
  EXPECT_EQ(run.origin().job_id(), fix.id());
  const std::string task = run.params().fields().at("instructions").string_value();
  EXPECT_THAT(task, HasSubstr("boom: no config"));
  EXPECT_THAT(task, HasSubstr("not instructions for you"));
  EXPECT_THAT(task, HasSubstr("Failing commit: " + broken_sha));
  EXPECT_THAT(task, HasSubstr("Last good commit: " + good.commit_sha()));

  // The fixed commit, deployed again: live and serving.
  const auto redeploy = Wait(Field(fix, "deploy_job_id"));
  ASSERT_EQ(redeploy.state(), jobs::v1::JOB_STATE_SUCCEEDED) << redeploy.error().message();
  EXPECT_EQ(redeploy.origin().job_id(), run.id());
  const auto releases = Releases(shop);
  ASSERT_EQ(releases.size(), 3u);
  EXPECT_EQ(releases[0].status(), deploy::v1::RELEASE_STATUS_LIVE);
  EXPECT_EQ(releases[0].commit_sha(), Field(fix, "commit_sha"));
  EXPECT_NE(releases[0].commit_sha(), broken_sha);
  EXPECT_EQ(releases[1].status(), deploy::v1::RELEASE_STATUS_FAILED);
  const Answer page = Get(router_port_, host);
  EXPECT_EQ(page.status, 200);
  EXPECT_THAT(page.body, HasSubstr("shop"));

  // She has no session open: each of the platform's steps is a
  // notification of its own.
  const std::string told = ToldUntil(redeploy.id());
  EXPECT_THAT(told, HasSubstr(absl::StrCat("deploy.fix job ", fix.id())));
  EXPECT_THAT(told, HasSubstr(absl::StrCat("engineering job ", run.id())));
  EXPECT_THAT(told, HasSubstr(absl::StrCat("deploy job ", redeploy.id())));

  // The history: the failed deploy → the fix → its run → the redeploy.
  jobs::v1::ListProjectHistoryRequest req;
  req.set_project_id(shop);
  req.set_leading_to(releases[0].id());
  jobs::v1::ListProjectHistoryResponse history;
  ASSERT_TRUE(jobs_->ListProjectHistory(TestMesh::Context(token_).get(), req, &history).ok());
  std::vector<std::string> chain;
  for (const auto& step : history.steps()) chain.push_back(step.id());
  EXPECT_THAT(chain, ::testing::ElementsAre(broken.id(), fix.id(), run.id(), redeploy.id()));
}

TEST_F(DeployFixTest, AFixThatDoesNotHelpIsTriedOnceAndTheLiveReleaseStays) {
  const std::string shop = ScaffoldedProject("shop");
  ASSERT_EQ(Deploy(shop).state(), jobs::v1::JOB_STATE_SUCCEEDED);
  const deploy::v1::Release good = Releases(shop)[0];
  // What no change of the code mends: the project's health path moved.
  projects::v1::GetProjectRequest get;
  get.set_project_id(shop);
  projects::v1::GetProjectResponse project;
  ASSERT_TRUE(projects_->GetProject(TestMesh::Context(token_).get(), get, &project).ok());
  projects::v1::UpdateProjectRequest update;
  *update.mutable_project() = project.project();
  update.mutable_project()->mutable_run_contract()->set_health_path("/nowhere");
  update.mutable_update_mask()->add_paths("run_contract");
  projects::v1::UpdateProjectResponse updated;
  grpc::Status s = projects_->UpdateProject(TestMesh::Context(token_).get(), update, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();

  PushChange(shop, {{"README.md", "# v2\n"}}, "v2");
  const auto failed = Deploy(shop);
  ASSERT_EQ(failed.state(), jobs::v1::JOB_STATE_FAILED);
  EXPECT_THAT(failed.error().message(), HasSubstr("/nowhere answered 404"));
  const auto fix = Ended(shop, "deploy.fix");
  ASSERT_EQ(fix.state(), jobs::v1::JOB_STATE_SUCCEEDED) << fix.error().message();
  const auto redeploy = Wait(Field(fix, "deploy_job_id"));
  ASSERT_EQ(redeploy.state(), jobs::v1::JOB_STATE_FAILED);
  EXPECT_THAT(redeploy.error().message(), HasSubstr("health gate failed"));
  EXPECT_THAT(redeploy.error().message(), ::testing::Not(HasSubstr("started a fix")));

  // Once: no fix of the fix; release 1 is still live and serving.
  absl::SleepFor(absl::Seconds(2));
  EXPECT_EQ(JobsOf(shop, "deploy.fix").size(), 1u);
  const auto releases = Releases(shop);
  ASSERT_EQ(releases.size(), 3u);
  EXPECT_EQ(releases[0].status(), deploy::v1::RELEASE_STATUS_FAILED);
  EXPECT_EQ(releases[1].status(), deploy::v1::RELEASE_STATUS_FAILED);
  EXPECT_EQ(releases[2].id(), good.id());
  EXPECT_EQ(releases[2].status(), deploy::v1::RELEASE_STATUS_LIVE);
  EXPECT_EQ(Get(router_port_, HostOf(good.url())).status, 200);
  const std::string told = ToldUntil(redeploy.id());
  EXPECT_THAT(told, HasSubstr(absl::StrCat("deploy job ", redeploy.id())));
  EXPECT_THAT(told, HasSubstr("It failed"));
}

}  // namespace
}  // namespace orchestrator
