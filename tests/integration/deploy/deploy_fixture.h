// A whole mesh with the real parts a deploy needs: Podman's Docker Engine
// API, Caddy through its admin API, the local git host; and a user "alice"
// with the steps her tests take (scaffold, push a change, deploy, list
// releases). Shared by the deploy and the diagnostics suites.
#pragma once

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "orchestrator/deploy/v1/deploy.grpc.pb.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "orchestrator/scaffolder/v1/scaffolder.grpc.pb.h"
#include "orchestrator/scheduler/v1/scheduler.grpc.pb.h"
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

namespace orchestrator::testing {

using testing::CaddyProcess;
using testing::FreePort;
using testing::PodmanService;
using testing::TempDir;
using testing::TestMesh;

struct Answer {
  int status = 0;
  std::string body;
};

// GET http://127.0.0.1:<port><path> with `Host: host`, as a browser asking
// for that host would (HTTP/1.1, one request, the connection closed).
inline Answer Get(int port, const std::string& host, const std::string& path = "/") {
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
inline GitRun GitAs(const std::string& token, const std::vector<std::string>& args,
                    const std::string& cwd = "/") {
  return testing::RunGit(args, cwd, {}, {{"http.extraHeader", "Authorization: Bearer " + token}});
}

class DeployFixture : public ::testing::Test {
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

  // `tweak` configures the mesh further, e.g. the deploy watch.
  explicit DeployFixture(std::function<void(MeshConfig&)> tweak = nullptr)
      : mesh_("all",
              [tweak](MeshConfig& c) {
                c.container_engine_url = podman_->url();
                c.caddy_admin_url = absl::StrCat("http://127.0.0.1:", caddy_admin_port_);
                c.router_listen = absl::StrCat("127.0.0.1:", router_port_);
                // Below the kernel's ephemeral ports (32768-60999), which any outgoing
                // connection of a parallel test may hold when a container binds.
                c.local_port_first = 31200;
                c.local_port_last = 31299;
                c.deploy_watch_failures = 0;  // the automatic-rollback suite turns it on
                if (tweak) tweak(c);
              }),
        deploy_(deploy::v1::DeployService::NewStub(mesh_.channel())),
        jobs_(jobs::v1::JobService::NewStub(mesh_.channel())),
        projects_(projects::v1::ProjectService::NewStub(mesh_.channel())),
        scaffolder_(scaffolder::v1::ScaffolderService::NewStub(mesh_.channel())) {
    std::tie(user_id_, token_) = mesh_.NewUser("alice");
    // Routes reconciled and fresh releases probed every second (the
    // platform's defaults are 30 s and 5 s).
    auto scheduler = scheduler::v1::SchedulerService::NewStub(mesh_.channel());
    for (const char* task : {"deploy.routes.reconcile", "deploy.releases.watch"}) {
      scheduler::v1::UpdateTaskScheduleRequest every;
      every.set_task_id(task);
      every.mutable_interval()->set_seconds(1);
      scheduler::v1::UpdateTaskScheduleResponse updated;
      EXPECT_TRUE(
          scheduler
              ->UpdateTaskSchedule(TestMesh::Context(mesh_.admin_token()).get(), every, &updated)
              .ok());
    }
  }

  ~DeployFixture() override {
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

  // Whether a failed deploy of the project starts a fix run.
  void SetDeployFix(const std::string& project_id, projects::v1::DeployFix fix) {
    projects::v1::UpdateProjectRequest req;
    req.mutable_project()->set_id(project_id);
    req.mutable_project()->set_deploy_fix(fix);
    req.mutable_update_mask()->add_paths("deploy_fix");
    projects::v1::UpdateProjectResponse resp;
    grpc::Status s = projects_->UpdateProject(TestMesh::Context(token_).get(), req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(resp.project().deploy_fix(), fix);
  }

  // The project's jobs of one kind, newest first.
  std::vector<jobs::v1::Job> JobsOf(const std::string& project_id, const std::string& kind) {
    jobs::v1::ListJobsRequest req;
    req.set_project_id(project_id);
    req.set_kind(kind);
    jobs::v1::ListJobsResponse resp;
    EXPECT_TRUE(jobs_->ListJobs(TestMesh::Context(token_).get(), req, &resp).ok());
    return {resp.jobs().begin(), resp.jobs().end()};
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

  inline static TempDir* dir_ = nullptr;
  inline static PodmanService* podman_ = nullptr;
  inline static CaddyProcess* caddy_ = nullptr;
  inline static containers::ContainerEngine* engine_ = nullptr;
  inline static int caddy_admin_port_ = 0;
  inline static int router_port_ = 0;

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

}  // namespace orchestrator::testing
