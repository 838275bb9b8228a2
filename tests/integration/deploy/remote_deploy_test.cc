// Deploying to a server reached over SSH: an sshd in a Podman container
// (tools/image/base-images ssh-target) on the host's network, registered
// and provisioned with the real ansible-playbook; its container engine is a
// second `podman system service` with an image store of its own (bound
// into the container where provisioning puts the engine's socket) and its
// Caddy runs inside the container with the Caddyfile provisioning wrote.
// The mesh reaches both only through its SSH tunnel as the deploy user
// with the mesh's key: the template's base image is copied over, the
// image built there, the container started there, its health gated
// through the tunnel, and the release served by that server's Caddy under
// the server's domain; the logs and health come from there too.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "orchestrator/deploy/v1/deploy.grpc.pb.h"
#include "orchestrator/infra/v1/infra.grpc.pb.h"
#include "services/common/containers/docker_engine.h"
#include "tests/integration/deploy/deploy_fixture.h"
#include "tests/support/free_port.h"
#include "tests/support/podman_service.h"
#include "tests/support/ssh_target.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_mesh.h"

namespace orchestrator {
namespace {
using testing::Answer;
using testing::FreePort;
using testing::Get;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::PodmanService;
using testing::SshTarget;
using testing::TempDir;
using testing::TestMesh;

constexpr char kDomain[] = "remote.test";
// The remote server's ports: apart from the local server's (31200-31299),
// below the kernel's ephemeral ports.
constexpr int kFirstPort = 31700;
constexpr int kLastPort = 31719;

// A second version of the scaffolded service.
constexpr char kShopV2[] = R"(import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok" if self.path == "/healthz" else b"Shop v2"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
)";

class RemoteDeployTest : public testing::DeployFixture {
 protected:
  static void SetUpTestSuite() {
    DeployFixture::SetUpTestSuite();
    skip_ = SshTarget::MissingPrerequisite();
    if (!skip_.empty()) return;
    remote_dir_ = new TempDir();
    // The server's own engine: its own image store, nothing of the host's.
    remote_engine_ = new PodmanService(
        remote_dir_->path(), absl::StrCat(PROJECT_SOURCE_DIR, "/tools/image/containers.conf"),
        testing::PodmanStorage::kPrivate);
    containers::DockerEngineConfig config;
    config.url = remote_engine_->url();
    remote_client_ = containers::DockerEngine::FromConfig(config).value().release();
    for (int i = 0; i < 100 && !remote_client_->Ping().ok(); ++i) {
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
  static void TearDownTestSuite() {
    if (remote_client_ != nullptr) {
      // What the tests left on the server's engine.
      auto left = remote_client_->ListContainers({{"orchestrator.project", std::nullopt}}, true);
      if (left.ok()) {
        for (const auto& c : *left) (void)remote_client_->RemoveContainer(c.id, true);
      }
    }
    delete remote_client_;
    delete remote_engine_;
    delete remote_dir_;
    remote_client_ = nullptr;
    remote_engine_ = nullptr;
    remote_dir_ = nullptr;
    DeployFixture::TearDownTestSuite();
  }

  RemoteDeployTest() : infra_(infra::v1::InfraService::NewStub(mesh_.channel())) {
    // Servers are their registrant's: the operator (an admin) registers one
    // and deploys her project to it.
    token_ = mesh_.admin_token();
  }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_TRUE(remote_client_->Ping().ok()) << remote_engine_->Log();
    SshTarget::Options options;
    options.host_network = true;
    options.mounts = {{remote_engine_->url().substr(7), "/srv/orchestrator/engine.sock"}};
    target_ = std::make_unique<SshTarget>(scratch_, options);
    ASSERT_EQ(target_->started().code, 0) << target_->started().out;
    router_port_remote_ = FreePort();
  }

  // Registers the target as an SSH server and provisions it; then starts
  // what systemd would on a real server: its Caddy (with the Caddyfile the
  // playbook wrote) and, for the deploy user, its engine's socket.
  // The target as an SSH server named `name`, its Caddy serving on
  // router_port_remote_.
  infra::v1::RegisterServerRequest Registration(const std::string& name) {
    infra::v1::RegisterServerRequest req;
    req.mutable_server()->set_name(name);
    req.mutable_server()->set_kind(infra::v1::SERVER_KIND_SSH);
    req.mutable_server()->set_address(target_->address());
    req.mutable_server()->set_ssh_user(SshTarget::kUser);
    req.mutable_server()->set_port_range_start(kFirstPort);
    req.mutable_server()->set_port_range_end(kLastPort);
    req.mutable_server()->set_domain(kDomain);
    req.mutable_server()->set_router_listen(absl::StrCat("127.0.0.1:", router_port_remote_));
    req.set_ssh_private_key(target_->private_key());
    return req;
  }

  infra::v1::Server ProvisionedServer() {
    infra::v1::RegisterServerRequest req = Registration("remote-1");
    infra::v1::RegisterServerResponse registered;
    grpc::Status s = infra_->RegisterServer(Ctx().get(), req, &registered);
    EXPECT_TRUE(s.ok()) << s.error_message();
    infra::v1::ProvisionServerRequest provision;
    provision.set_server_id(registered.server().id());
    infra::v1::ProvisionServerResponse provisioning;
    s = infra_->ProvisionServer(Ctx().get(), provision, &provisioning);
    EXPECT_TRUE(s.ok()) << s.error_message();
    const auto job = Wait(provisioning.job().id());
    EXPECT_EQ(job.state(), jobs::v1::JOB_STATE_SUCCEEDED) << job.DebugString();
    // Not systemd: what its units would start, as they would.
    EXPECT_EQ(target_->Exec("chown deploy /srv/orchestrator/engine.sock").code, 0);
    EXPECT_EQ(target_
                  ->Exec("su -s /bin/sh caddy -c \"umask 0007; cd /var/lib/caddy && "
                         "HOME=/var/lib/caddy nohup caddy run --adapter caddyfile --config "
                         "/etc/caddy/Caddyfile > /tmp/caddy.log 2>&1 &\"")
                  .code,
              0);
    for (int i = 0; i < 100 && target_->Exec("test -S /srv/orchestrator/caddy-admin.sock").code;
         ++i) {
      absl::SleepFor(absl::Milliseconds(100));
    }
    return registered.server();
  }

  std::unique_ptr<grpc::ClientContext> Ctx() { return TestMesh::Context(token_); }

  jobs::v1::Job DeployTo(const std::string& project_id, const std::string& server_id) {
    deploy::v1::TriggerDeployRequest req;
    req.set_project_id(project_id);
    req.set_server_id(server_id);
    deploy::v1::TriggerDeployResponse resp;
    grpc::Status s = deploy_->TriggerDeploy(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return Wait(resp.job().id());
  }

  inline static std::string skip_;
  inline static TempDir* remote_dir_ = nullptr;
  inline static PodmanService* remote_engine_ = nullptr;
  inline static containers::ContainerEngine* remote_client_ = nullptr;

  std::unique_ptr<infra::v1::InfraService::Stub> infra_;
  std::unique_ptr<SshTarget> target_;
  int router_port_remote_ = 0;
};

TEST_F(RemoteDeployTest, AProjectIsBuiltRunAndServedOnTheServerItWasDeployedTo) {
  const infra::v1::Server server = ProvisionedServer();
  const std::string shop = ScaffoldedProject("shop");

  const auto job = DeployTo(shop, server.id());
  ASSERT_EQ(job.state(), jobs::v1::JOB_STATE_SUCCEEDED)
      << job.DebugString() << LogOf(shop, job.id()) << target_->Exec("cat /tmp/caddy.log").out;
  const std::string url = Field(job, "url");
  EXPECT_EQ(url, absl::StrCat("http://", HostOf(url), ":", router_port_remote_));
  EXPECT_THAT(HostOf(url), ::testing::EndsWith(absl::StrCat(".", kDomain)));
  const std::string log = LogOf(shop, job.id());
  EXPECT_THAT(log, HasSubstr("is on server remote-1"));  // the base image went over

  // Served by the server's Caddy, from a container on the server's engine.
  const Answer answer = Get(router_port_remote_, HostOf(url));
  EXPECT_EQ(answer.status, 200) << answer.body;
  EXPECT_THAT(answer.body, HasSubstr("Shop v1"));
  auto there = remote_client_->ListContainers({{"orchestrator.project", shop}}, false);
  ASSERT_TRUE(there.ok());
  EXPECT_EQ(there->size(), 1u);
  auto here = engine_->ListContainers({{"orchestrator.project", shop}}, true);
  ASSERT_TRUE(here.ok());
  EXPECT_TRUE(here->empty()) << "nothing runs on the mesh's own engine";
  // (Caddy answers an empty 200 for a host it has no route for.)
  EXPECT_THAT(Get(router_port_, HostOf(url)).body, Not(HasSubstr("Shop v1")))
      << "the local Caddy does not route it";
  const auto releases = Releases(shop);
  ASSERT_FALSE(releases.empty());
  EXPECT_EQ(releases.front().server_id(), server.id());

  // Its health and logs are read there too.
  infra::v1::CheckServiceHealthRequest health;
  health.set_project_id(shop);
  infra::v1::CheckServiceHealthResponse healthy;
  grpc::Status s = infra_->CheckServiceHealth(Ctx().get(), health, &healthy);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(healthy.status(), infra::v1::HEALTH_STATUS_HEALTHY) << healthy.DebugString();
  infra::v1::GetServiceLogsRequest logs;
  logs.set_project_id(shop);
  auto ctx = Ctx();
  auto reader = infra_->GetServiceLogs(ctx.get(), logs);
  infra::v1::GetServiceLogsResponse lines;
  std::string text;
  while (reader->Read(&lines)) {
    for (const auto& l : lines.lines()) absl::StrAppend(&text, l.text(), "\n");
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_FALSE(text.empty()) << "the container's output on the server";

  // A new commit replaces it there, through a tunnel opened again after
  // the last one was cut.
  EXPECT_EQ(testing::KillTunnels(target_->port()), true);
  PushChange(shop, {{"app.py", kShopV2}}, "v2");
  const auto second = DeployTo(shop, "");
  ASSERT_EQ(second.state(), jobs::v1::JOB_STATE_SUCCEEDED) << LogOf(shop, second.id());
  EXPECT_THAT(Get(router_port_remote_, HostOf(url)).body, HasSubstr("Shop v2"));
}

TEST_F(RemoteDeployTest, AServerNotProvisionedOrAnotherServerIsRefusedSayingWhatToDo) {
  infra::v1::RegisterServerRequest req = Registration("bare");
  infra::v1::RegisterServerResponse bare;
  ASSERT_TRUE(infra_->RegisterServer(Ctx().get(), req, &bare).ok());
  const std::string shop = ScaffoldedProject("shop");

  deploy::v1::TriggerDeployRequest deploy;
  deploy.set_project_id(shop);
  deploy.set_server_id(bare.server().id());
  deploy::v1::TriggerDeployResponse resp;
  grpc::Status s = deploy_->TriggerDeploy(Ctx().get(), deploy, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("provision it"));

  // The deploy user's login is the mesh's alone: not even an admin gets it.
  infra::v1::GetServerAccessRequest access;
  access.set_server_id(bare.server().id());
  infra::v1::GetServerAccessResponse login;
  s = infra_->GetServerAccess(Ctx().get(), access, &login);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_TRUE(login.ssh().private_key().empty());

  // Deployed locally, the project's ports are there: another server is
  // refused until they are released.
  ASSERT_EQ(Deploy(shop).state(), jobs::v1::JOB_STATE_SUCCEEDED);
  s = deploy_->TriggerDeploy(Ctx().get(), deploy, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("release"));
}

}  // namespace
}  // namespace orchestrator
