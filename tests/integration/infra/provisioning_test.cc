// Servers users register and the platform provisions for real: an sshd in
// a Podman container on a loopback port (tools/image/base-images
// ssh-target) is provisioned by the real ansible-playbook with the playbook
// shipped in the binary; a second run changes nothing; a broken target
// ends FAILED naming the task that failed; an unreachable server is
// UNAVAILABLE at once; the reachability probe marks servers READY or
// UNREACHABLE. Hostile registrations are refused naming the field.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "orchestrator/infra/v1/infra.grpc.pb.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "services/jobs/store/pg_job_store.h"
#include "tests/support/free_port.h"
#include "tests/support/job_wait.h"
#include "tests/support/ssh_target.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_mesh.h"

namespace orchestrator {
namespace {
using testing::FreePort;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::SshTarget;
using testing::TempDir;
using testing::TestMesh;

// What these tests need of the machine, or why they cannot run.
std::string MissingPrerequisite() {
  if (const std::string missing = SshTarget::MissingPrerequisite(); !missing.empty()) {
    return missing;
  }
  if (testing::Shell("command -v ansible-playbook").code != 0) {
    return "ansible-playbook is missing: tools/setup";
  }
  return "";
}

class ServersTest : public ::testing::Test {
 protected:
  ServersTest()
      : mesh_("all"),
        infra_(infra::v1::InfraService::NewStub(mesh_.channel())),
        jobs_(jobs::v1::JobService::NewStub(mesh_.channel())) {
    // Only admins may register and provision servers today (the user
    // role grants infra.server.list/get only).
    token_ = mesh_.admin_token();
  }

  grpc::Status Register(const std::string& name, const std::string& address, const std::string& key,
                        infra::v1::Server* out = nullptr, const std::string& request_id = "",
                        const std::string& token = "",
                        std::function<void(infra::v1::RegisterServerRequest&)> tweak = nullptr) {
    infra::v1::RegisterServerRequest req;
    req.mutable_server()->set_name(name);
    req.mutable_server()->set_kind(infra::v1::SERVER_KIND_SSH);
    req.mutable_server()->set_address(address);
    req.mutable_server()->set_ssh_user(SshTarget::kUser);
    req.mutable_server()->set_domain("apps.example.com");
    req.mutable_server()->set_port_range_start(40000);
    req.mutable_server()->set_port_range_end(40099);
    req.set_ssh_private_key(key);
    req.set_request_id(request_id);
    if (tweak) tweak(req);
    infra::v1::RegisterServerResponse resp;
    grpc::Status s =
        infra_->RegisterServer(TestMesh::Context(token.empty() ? token_ : token).get(), req, &resp);
    if (out != nullptr) *out = resp.server();
    return s;
  }

  grpc::Status Provision(const std::string& server_id, jobs::v1::Job* out = nullptr,
                         const std::string& request_id = "", const std::string& token = "") {
    infra::v1::ProvisionServerRequest req;
    req.set_server_id(server_id);
    req.set_request_id(request_id);
    infra::v1::ProvisionServerResponse resp;
    grpc::Status s = infra_->ProvisionServer(
        TestMesh::Context(token.empty() ? token_ : token).get(), req, &resp);
    if (out != nullptr) *out = resp.job();
    return s;
  }

  infra::v1::Server GetServer(const std::string& id) {
    infra::v1::GetServerRequest req;
    req.set_server_id(id);
    infra::v1::GetServerResponse resp;
    grpc::Status s = infra_->GetServer(TestMesh::Context(token_).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.server();
  }

  jobs::v1::Job Wait(const jobs::v1::Job& job, const std::string& token = "") {
    return testing::WaitForJob(*jobs_, token.empty() ? token_ : token, job.id());
  }

  std::vector<std::string> Progress(const std::string& job_id) {
    jobs::v1::ListJobEventsRequest req;
    req.set_job_id(job_id);
    req.set_page_size(500);
    jobs::v1::ListJobEventsResponse resp;
    EXPECT_TRUE(jobs_->ListJobEvents(TestMesh::Context(token_).get(), req, &resp).ok());
    std::vector<std::string> messages;
    for (const auto& e : resp.events()) {
      if (e.has_progress()) messages.push_back(e.progress().message());
    }
    return messages;
  }

  static double Number(const jobs::v1::Job& job, const std::string& field) {
    auto it = job.result().fields().find(field);
    return it == job.result().fields().end() ? -1 : it->second.number_value();
  }

  // The mesh's public key, as the platform stored it.
  std::string MeshPublicKey() {
    auto pool = mesh_.database().NewPool(1);
    auto r =
        pool->Exec({"t_mesh_key", "SELECT public_key FROM infra.mesh_keys WHERE name = 'mesh'"});
    if (!r.ok() || r->rows() == 0) return "";
    return std::string(r->Get(0, 0));
  }

  // A probe job, as the scheduler enqueues it; as it ended.
  jobs::v1::Job Probe() {
    jobs::PgJobStore store(mesh_.database().NewPool(1));
    jobs::EnqueueRequest req;
    req.kind = "infra.servers.probe";
    req.max_attempts = 1;
    auto job = store.Enqueue(req, absl::Now());
    EXPECT_TRUE(job.ok()) << job.status();
    return testing::WaitForJob(*jobs_, mesh_.admin_token(), job.ok() ? job->id() : "");
  }

  TestMesh mesh_;
  std::unique_ptr<infra::v1::InfraService::Stub> infra_;
  std::unique_ptr<jobs::v1::JobService::Stub> jobs_;
  std::string token_;
  TempDir dir_;
};

class ProvisioningTest : public ServersTest {
 protected:
  void SetUp() override {
    if (const std::string missing = MissingPrerequisite(); !missing.empty())
      GTEST_SKIP() << missing;
  }
};

TEST_F(ProvisioningTest, AServerIsProvisionedForRealAndASecondRunChangesNothing) {
  SshTarget target(dir_);
  ASSERT_EQ(target.Ssh("true").code, 0) << target.started().out;
  infra::v1::Server server;
  grpc::Status s = Register("web-1", target.address(), target.private_key(), &server, "reg-1");
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(server.status(), infra::v1::SERVER_STATUS_REGISTERED);
  EXPECT_EQ(server.kind(), infra::v1::SERVER_KIND_SSH);
  EXPECT_FALSE(server.owner_id().empty());
  EXPECT_THAT(server.DebugString(), Not(HasSubstr("PRIVATE KEY")));

  jobs::v1::Job queued;
  s = Provision(server.id(), &queued, "prov-1");
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(queued.kind(), "provision");
  const jobs::v1::Job first = Wait(queued);
  ASSERT_EQ(first.state(), jobs::v1::JOB_STATE_SUCCEEDED) << first.error().message();
  EXPECT_GT(Number(first, "changed"), 0) << first.result().DebugString();
  EXPECT_EQ(Number(first, "failed"), 0);
  EXPECT_THAT(Progress(first.id()), ::testing::Contains(HasSubstr("Create the deploy user")));

  infra::v1::Server ready = GetServer(server.id());
  EXPECT_EQ(ready.status(), infra::v1::SERVER_STATUS_READY) << ready.status_reason();
  EXPECT_TRUE(ready.has_last_seen_time());
  EXPECT_EQ(ready.provision_job_id(), first.id());
  EXPECT_THAT(ready.DebugString(), Not(HasSubstr("PRIVATE KEY")));

  // What the playbook did is really there: the deploy user, with the
  // mesh's key.
  EXPECT_EQ(target.Ssh("id -u deploy").code, 0);
  const std::string mesh_key = MeshPublicKey();
  ASSERT_THAT(mesh_key, HasSubstr("ssh-ed25519 "));
  EXPECT_THAT(target.Ssh("sudo cat /home/deploy/.ssh/authorized_keys").out, HasSubstr(mesh_key));
  EXPECT_EQ(target.Ssh("command -v podman caddy").code, 0);

  // The same request_id answers the same job; a new one runs again and
  // changes nothing.
  jobs::v1::Job retried;
  ASSERT_TRUE(Provision(server.id(), &retried, "prov-1").ok());
  EXPECT_EQ(retried.id(), first.id());
  jobs::v1::Job again_queued;
  s = Provision(server.id(), &again_queued, "prov-2");
  ASSERT_TRUE(s.ok()) << s.error_message();
  const jobs::v1::Job second = Wait(again_queued);
  ASSERT_EQ(second.state(), jobs::v1::JOB_STATE_SUCCEEDED) << second.error().message();
  EXPECT_EQ(Number(second, "changed"), 0) << second.result().DebugString();
  EXPECT_GT(Number(second, "ok"), 0);
  EXPECT_EQ(GetServer(server.id()).provision_job_id(), second.id());

  // Ports are allocated on it from its range.
  auto projects = projects::v1::ProjectService::NewStub(mesh_.channel());
  projects::v1::CreateProjectRequest create;
  create.mutable_project()->set_name("shop");
  projects::v1::CreateProjectResponse project;
  ASSERT_TRUE(projects->CreateProject(TestMesh::Context(token_).get(), create, &project).ok());
  infra::v1::AllocatePortRequest allocate;
  allocate.set_project_id(project.project().id());
  allocate.set_service("web");
  allocate.set_server_id(server.id());
  infra::v1::AllocatePortResponse allocated;
  s = infra_->AllocatePort(TestMesh::Context(token_).get(), allocate, &allocated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(allocated.allocation().server_id(), server.id());
  EXPECT_GE(allocated.allocation().port(), 40000);
  EXPECT_LE(allocated.allocation().port(), 40099);

  // The reachability probe: READY while it answers, UNREACHABLE with
  // ssh's error once it does not.
  jobs::v1::Job probed = Probe();
  ASSERT_EQ(probed.state(), jobs::v1::JOB_STATE_SUCCEEDED) << probed.error().message();
  EXPECT_EQ(Number(probed, "reachable"), 1);
  EXPECT_EQ(GetServer(server.id()).status(), infra::v1::SERVER_STATUS_READY);
  target.Stop();
  probed = Probe();
  ASSERT_EQ(probed.state(), jobs::v1::JOB_STATE_SUCCEEDED) << probed.error().message();
  EXPECT_EQ(Number(probed, "unreachable"), 1);
  const infra::v1::Server gone = GetServer(server.id());
  EXPECT_EQ(gone.status(), infra::v1::SERVER_STATUS_UNREACHABLE);
  EXPECT_THAT(gone.status_reason(), HasSubstr("cannot reach"));
  // And provisioning it now is UNAVAILABLE at once, with the SSH error.
  s = Provision(server.id());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

TEST_F(ProvisioningTest, ABrokenTargetEndsFailedWithTheTaskNamed) {
  SshTarget target(dir_);
  ASSERT_EQ(target.Ssh("true").code, 0) << target.started().out;
  // Caddy is gone and apt has no package source left to install it from.
  ASSERT_EQ(target
                .Exec("dpkg --remove caddy >/dev/null 2>&1; : > /etc/apt/sources.list; "
                      "rm -f /etc/apt/sources.list.d/*")
                .code,
            0);
  infra::v1::Server server;
  ASSERT_TRUE(Register("broken", target.address(), target.private_key(), &server).ok());
  jobs::v1::Job queued;
  grpc::Status s = Provision(server.id(), &queued);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const jobs::v1::Job job = Wait(queued);
  ASSERT_EQ(job.state(), jobs::v1::JOB_STATE_FAILED);
  EXPECT_THAT(job.error().message(), HasSubstr("Install the container engine and Caddy"));
  EXPECT_THAT(job.error().message(), HasSubstr("caddy"));
  const infra::v1::Server failed = GetServer(server.id());
  EXPECT_EQ(failed.status(), infra::v1::SERVER_STATUS_FAILED);
  EXPECT_THAT(failed.status_reason(), HasSubstr("task 'Install the container engine and Caddy'"));
  EXPECT_EQ(failed.provision_job_id(), job.id());
}

TEST_F(ProvisioningTest, AServerThatCannotBeReachedIsUnavailableAtOnce) {
  SshTarget target(dir_);
  ASSERT_EQ(target.Ssh("true").code, 0) << target.started().out;
  // Nothing listens there.
  infra::v1::Server nobody;
  ASSERT_TRUE(
      Register("nobody", absl::StrCat("127.0.0.1:", FreePort()), target.private_key(), &nobody)
          .ok());
  grpc::Status s = Provision(nobody.id());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("Connection refused"));
  // A key the server does not take.
  SshTarget other(dir_);
  infra::v1::Server refused;
  ASSERT_TRUE(Register("wrong-key", target.address(), other.private_key(), &refused).ok());
  s = Provision(refused.id());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("Permission denied"));
  EXPECT_EQ(GetServer(refused.id()).status(), infra::v1::SERVER_STATUS_REGISTERED);
}

// Needs no container: what RegisterServer refuses, and who sees what.
TEST_F(ServersTest, HostileRegistrationsAreRefusedNamingTheField) {
  const std::string key =
      "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
  struct Case {
    std::string field;
    std::function<void(infra::v1::RegisterServerRequest&)> tweak;
  };
  const std::vector<Case> cases = {
      {"server.name", [](auto& r) { r.mutable_server()->set_name("Web 1"); }},
      {"server.name", [](auto& r) { r.mutable_server()->set_name("-web"); }},
      {"server.name", [](auto& r) { r.mutable_server()->set_name(""); }},
      {"server.name", [](auto& r) { r.mutable_server()->set_name("local"); }},
      {"server.name", [](auto& r) { r.mutable_server()->set_name(std::string(64, 'a')); }},
      {"server.address", [](auto& r) { r.mutable_server()->set_address(""); }},
      {"server.address", [](auto& r) { r.mutable_server()->set_address("-oProxyCommand=sh"); }},
      {"server.address", [](auto& r) { r.mutable_server()->set_address("host;reboot"); }},
      {"server.address", [](auto& r) { r.mutable_server()->set_address("host:0"); }},
      {"server.address", [](auto& r) { r.mutable_server()->set_address("host:99999"); }},
      {"server.address",
       [](auto& r) { r.mutable_server()->set_address("{{ lookup('pipe','id') }}"); }},
      {"server.ssh_user", [](auto& r) { r.mutable_server()->set_ssh_user(""); }},
      {"server.ssh_user", [](auto& r) { r.mutable_server()->set_ssh_user("-oops"); }},
      {"server.ssh_user", [](auto& r) { r.mutable_server()->set_ssh_user("a b"); }},
      {"server.port_range_start", [](auto& r) { r.mutable_server()->set_port_range_start(0); }},
      {"server.port_range_start", [](auto& r) { r.mutable_server()->set_port_range_start(80); }},
      {"server.port_range_end", [](auto& r) { r.mutable_server()->set_port_range_end(39999); }},
      {"port_range_end", [](auto& r) { r.mutable_server()->set_port_range_end(70000); }},
      {"ssh_private_key", [](auto& r) { r.set_ssh_private_key(""); }},
      {"ssh_private_key", [](auto& r) { r.set_ssh_private_key("hunter2"); }},
      {"ssh_private_key", [](auto& r) { r.set_ssh_private_key(std::string(20000, 'k')); }},
      {"server.kind", [](auto& r) { r.mutable_server()->set_kind(infra::v1::SERVER_KIND_LOCAL); }},
      {"server.domain", [](auto& r) { r.mutable_server()->set_domain(""); }},
      {"server.domain", [](auto& r) { r.mutable_server()->set_domain("localhost"); }},
      {"server.domain", [](auto& r) { r.mutable_server()->set_domain("a b.example"); }},
      {"server.domain", [](auto& r) { r.mutable_server()->set_domain("-x.example"); }},
      {"server.router_listen", [](auto& r) { r.mutable_server()->set_router_listen("80"); }},
      {"server.router_listen", [](auto& r) { r.mutable_server()->set_router_listen(":0"); }},
      {"server.router_listen",
       [](auto& r) { r.mutable_server()->set_router_listen("{{ x }}:80"); }},
  };
  for (const auto& c : cases) {
    grpc::Status s = Register("web-1", "203.0.113.7:2222", key, nullptr, "", "", c.tweak);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.field << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.field));
  }
  grpc::Status k8s = Register("k8s", "https://k8s.example:6443", key, nullptr, "", "", [](auto& r) {
    r.mutable_server()->set_kind(infra::v1::SERVER_KIND_KUBERNETES);
  });
  EXPECT_EQ(k8s.error_code(), grpc::StatusCode::UNIMPLEMENTED) << k8s.error_message();
  EXPECT_THAT(k8s.error_message(), HasSubstr("not supported yet"));

  // Names are unique per owner; request_id makes a retry answer the same.
  infra::v1::Server first, retried, v6;
  ASSERT_TRUE(Register("web-1", "203.0.113.7:2222", key, &first, "r1").ok());
  ASSERT_TRUE(Register("web-1", "203.0.113.7:2222", key, &retried, "r1").ok());
  EXPECT_EQ(retried.id(), first.id());
  grpc::Status twice = Register("web-1", "203.0.113.8", key);
  EXPECT_EQ(twice.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(twice.error_message(), HasSubstr("server.name"));
  EXPECT_TRUE(Register("v6", "[2001:db8::1]:22", key, &v6).ok());
  EXPECT_THAT(first.DebugString(), Not(HasSubstr("PRIVATE KEY")));

  // Another owner's server is NOT_FOUND; the platform's own needs no
  // provisioning.
  const std::string bob = mesh_.NewUser("bob").second;
  infra::v1::GetServerRequest get;
  get.set_server_id(first.id());
  infra::v1::GetServerResponse got;
  EXPECT_EQ(infra_->GetServer(TestMesh::Context(bob).get(), get, &got).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Provision(first.id(), nullptr, "", bob).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  infra::v1::ListServersRequest list;
  infra::v1::ListServersResponse listed;
  ASSERT_TRUE(infra_->ListServers(TestMesh::Context(token_).get(), list, &listed).ok());
  std::string local_id;
  for (const auto& s : listed.servers()) {
    if (s.name() == "local") local_id = s.id();
  }
  EXPECT_EQ(listed.servers_size(), 3) << "local, web-1 and v6";
  grpc::Status local = Provision(local_id);
  EXPECT_EQ(local.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << local.error_message();
  EXPECT_EQ(Provision("").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServersTest, AProvisionWhoseJobEndedWithoutTellingIsFailedByTheNextProbe) {
  const std::string key =
      "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
  infra::v1::Server server;
  ASSERT_TRUE(Register("lost", "203.0.113.9", key, &server).ok());
  // As a provision job killed on its last attempt leaves it: PROVISIONING
  // under a job the reaper ended without the handler recording anything.
  jobs::PgJobStore store(mesh_.database().NewPool(1));
  jobs::EnqueueRequest req;
  req.kind = "no.worker.runs.this";
  auto job = store.Enqueue(req, absl::Now());
  ASSERT_TRUE(job.ok());
  ASSERT_TRUE(store.Cancel(job->id(), "test", "lost", absl::Now()).ok());
  auto pool = mesh_.database().NewPool(1);
  ASSERT_TRUE(pool->Exec({"t_stuck",
                          "UPDATE infra.servers SET status = 2, provision_job_id = $2 "
                          "WHERE id = $1"},
                         {server.id(), job->id()})
                  .ok());
  ASSERT_EQ(GetServer(server.id()).status(), infra::v1::SERVER_STATUS_PROVISIONING);

  auto probe = Probe();
  ASSERT_EQ(probe.state(), jobs::v1::JOB_STATE_SUCCEEDED) << probe.error().message();
  EXPECT_EQ(Number(probe, "abandoned_provisions_failed"), 1);
  auto after = GetServer(server.id());
  EXPECT_EQ(after.status(), infra::v1::SERVER_STATUS_FAILED);
  EXPECT_THAT(after.status_reason(), ::testing::HasSubstr("ended without reporting"));
}

}  // namespace
}  // namespace orchestrator
