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
#include "orchestrator/deploy/v1/deploy.grpc.pb.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "orchestrator/scaffolder/v1/scaffolder.grpc.pb.h"
#include "services/common/containers/docker_engine.h"
#include "services/common/pagination/page_token.h"
#include "services/common/router/caddy_router.h"
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

struct Answer {
  int status = 0;
  std::string body;
};

// GET http://127.0.0.1:<port><path> with `Host: host`, as a browser asking
// for that host would (HTTP/1.1, one request, the connection closed).
Answer Get(int port, const std::string& host, const std::string& path = "/") {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  Answer answer;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    const std::string request =
        absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", host, "\r\nConnection: close\r\n\r\n");
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      std::string raw;
      char buffer[4096];
      ssize_t n;
      while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) raw.append(buffer, n);
      if (raw.rfind("HTTP/1.1 ", 0) == 0) answer.status = std::atoi(raw.c_str() + 9);
      if (size_t body = raw.find("\r\n\r\n"); body != std::string::npos) {
        answer.body = raw.substr(body + 4);
      }
    }
  }
  close(fd);
  return answer;
}

// git as a user runs it, authenticating with an orchestrator `token`.
testing::GitRun GitAs(const std::string& token, const std::vector<std::string>& args,
                      const std::string& cwd = "/") {
  return testing::RunGit(args, cwd, {}, {{"http.extraHeader", "Authorization: Bearer " + token}});
}

class DeployTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ::umask(077);  // as tools/up runs orchestratord: checkouts must not depend on it
    dir_ = new TempDir();
    podman_ = new PodmanService(dir_->path(),
                                absl::StrCat(PROJECT_SOURCE_DIR, "/tools/image/containers.conf"));
    caddy_admin_port_ = FreePort();
    router_port_ = FreePort();
    caddy_ = new CaddyProcess(*dir_, caddy_admin_port_);
    ASSERT_TRUE(caddy_->Start()) << caddy_->log();
    containers::DockerEngineConfig config;
    config.url = podman_->url();
    engine_ = containers::DockerEngine::FromConfig(config).value().release();
    for (int i = 0; i < 100 && !engine_->Ping().ok(); ++i) absl::SleepFor(absl::Milliseconds(100));
    ASSERT_TRUE(engine_->Ping().ok()) << podman_->Log();
  }
  static void TearDownTestSuite() {
    delete engine_;
    delete caddy_;
    delete podman_;
    delete dir_;
  }

  DeployTest()
      : mesh_("all",
              [](MeshConfig& c) {
                c.container_engine_url = podman_->url();
                c.caddy_admin_url = absl::StrCat("http://127.0.0.1:", caddy_admin_port_);
                c.router_listen = absl::StrCat("127.0.0.1:", router_port_);
                c.local_port_first = 34200;
                c.local_port_last = 34299;
                c.deploy_reconcile_interval = std::chrono::milliseconds(300);
              }),
        deploy_(deploy::v1::DeployService::NewStub(mesh_.channel())),
        jobs_(jobs::v1::JobService::NewStub(mesh_.channel())),
        projects_(projects::v1::ProjectService::NewStub(mesh_.channel())),
        scaffolder_(scaffolder::v1::ScaffolderService::NewStub(mesh_.channel())) {
    std::tie(user_id_, token_) = mesh_.NewUser("alice");
  }

  ~DeployTest() override {
    // Whatever the test's projects left running.
    for (const auto& project : projects_made_) {
      auto left = engine_->ListContainers({{"orchestrator.project", project}}, true);
      if (left.ok()) {
        for (const auto& c : *left) (void)engine_->RemoveContainer(c.id, true);
      }
      auto images = engine_->ListImages({{"orchestrator.project", project}});
      if (images.ok()) {
        for (const auto& i : *images) (void)engine_->RemoveImage(i.id, true);
      }
    }
  }

  std::string ScaffoldedProject(const std::string& name) {
    projects::v1::CreateProjectRequest create;
    create.mutable_project()->set_name(name);
    projects::v1::CreateProjectResponse created;
    EXPECT_TRUE(projects_->CreateProject(TestMesh::Context(token_).get(), create, &created).ok());
    const std::string id = created.project().id();
    projects_made_.push_back(id);
    scaffolder::v1::ScaffoldRequest scaffold;
    scaffold.set_project_id(id);
    scaffold.set_template_id("python-http");
    (*scaffold.mutable_answers())["service_title"] = "Shop v1";
    scaffolder::v1::ScaffoldResponse scaffolded;
    grpc::Status s = scaffolder_->Scaffold(TestMesh::Context(token_).get(), scaffold, &scaffolded);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(Wait(scaffolded.job().id()).state(), jobs::v1::JOB_STATE_SUCCEEDED);
    return id;
  }

  std::string RepositoryOf(const std::string& project_id) {
    projects::v1::GetProjectRequest req;
    req.set_project_id(project_id);
    projects::v1::GetProjectResponse resp;
    EXPECT_TRUE(projects_->GetProject(TestMesh::Context(token_).get(), req, &resp).ok());
    return resp.project().repository_url();
  }

  // Commits `files` (path → content) on main of the project's repository,
  // pushed as the user.
  std::string PushChange(const std::string& project_id,
                         const std::map<std::string, std::string>& files,
                         const std::string& message) {
    const std::string clone = scratch_.Path(absl::StrCat("clone-", ++clones_));
    EXPECT_EQ(GitAs(token_, {"clone", "-q", RepositoryOf(project_id), clone}).exit_code, 0);
    for (const auto& [path, content] : files) std::ofstream(clone + "/" + path) << content;
    EXPECT_EQ(GitAs(token_, {"commit", "-qam", message}, clone).exit_code, 0);
    const auto pushed = GitAs(token_, {"push", "-q", "origin", "main"}, clone);
    EXPECT_EQ(pushed.exit_code, 0) << pushed.err;
    return std::string(absl::StripAsciiWhitespace(GitAs(token_, {"rev-parse", "HEAD"}, clone).out));
  }

  jobs::v1::Job Wait(const std::string& job_id) {
    return testing::WaitForJob(*jobs_, token_, job_id);
  }

  jobs::v1::Job Deploy(const std::string& project_id, const std::string& commit = "") {
    deploy::v1::TriggerDeployRequest req;
    req.set_project_id(project_id);
    req.set_commit_sha(commit);
    deploy::v1::TriggerDeployResponse resp;
    grpc::Status s = deploy_->TriggerDeploy(TestMesh::Context(token_).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return Wait(resp.job().id());
  }

  // The deploy job's log, for a failure's message.
  std::string LogOf(const std::string& project_id, const std::string& job_id) {
    deploy::v1::GetDeployLogsRequest req;
    req.set_project_id(project_id);
    req.set_job_id(job_id);
    deploy::v1::GetDeployLogsResponse resp;
    grpc::Status s = deploy_->GetDeployLogs(TestMesh::Context(token_).get(), req, &resp);
    if (!s.ok()) return s.error_message();
    std::string all;
    for (const auto& l : resp.lines()) absl::StrAppend(&all, l.text(), "\n");
    return all;
  }

  std::vector<deploy::v1::Release> Releases(const std::string& project_id) {
    deploy::v1::ListReleasesRequest req;
    req.set_project_id(project_id);
    deploy::v1::ListReleasesResponse resp;
    EXPECT_TRUE(deploy_->ListReleases(TestMesh::Context(token_).get(), req, &resp).ok());
    return {resp.releases().begin(), resp.releases().end()};
  }

  // The host a release's URL names.
  static std::string HostOf(const std::string& url) {
    std::string rest = url.substr(url.find("://") + 3);
    return rest.substr(0, rest.find(':'));
  }

  std::string Field(const jobs::v1::Job& job, const std::string& name) {
    auto it = job.result().fields().find(name);
    return it == job.result().fields().end() ? "" : it->second.string_value();
  }

  static TempDir* dir_;
  static PodmanService* podman_;
  static CaddyProcess* caddy_;
  static containers::ContainerEngine* engine_;
  static int caddy_admin_port_;
  static int router_port_;

  TestMesh mesh_;
  std::unique_ptr<deploy::v1::DeployService::Stub> deploy_;
  std::unique_ptr<jobs::v1::JobService::Stub> jobs_;
  std::unique_ptr<projects::v1::ProjectService::Stub> projects_;
  std::unique_ptr<scaffolder::v1::ScaffolderService::Stub> scaffolder_;
  std::string user_id_, token_;
  std::vector<std::string> projects_made_;
  TempDir scratch_;
  int clones_ = 0;
};

TempDir* DeployTest::dir_ = nullptr;
PodmanService* DeployTest::podman_ = nullptr;
CaddyProcess* DeployTest::caddy_ = nullptr;
containers::ContainerEngine* DeployTest::engine_ = nullptr;
int DeployTest::caddy_admin_port_ = 0;
int DeployTest::router_port_ = 0;

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

  // A commit whose server dies at once: its health gate fails.
  PushChange(shop, {{"app.py", "import sys\nprint('boom: no config', flush=True)\nsys.exit(3)\n"}},
             "broken");
  const auto broken = Deploy(shop);
  EXPECT_EQ(broken.state(), jobs::v1::JOB_STATE_FAILED);
  EXPECT_THAT(broken.error().message(), HasSubstr("health gate"));
  EXPECT_THAT(broken.error().message(), HasSubstr("boom: no config"));
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
