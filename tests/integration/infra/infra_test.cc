// InfraService over a whole mesh: the machine the mesh runs on as server
// "local", and ports allocated on it to projects' services, owned,
// idempotent, unique under concurrent requests, released only by their
// owner with confirm.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <thread>

#include "orchestrator/infra/v1/infra.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "orchestrator/scheduler/v1/scheduler.grpc.pb.h"
#include "tests/support/job_wait.h"
#include "tests/support/test_mesh.h"

namespace orchestrator {
namespace {
using ::testing::HasSubstr;
using testing::TestMesh;

// A port of 127.0.0.1 held by someone else while it lives.
class Listening {
 public:
  explicit Listening(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    bound_ = bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 && listen(fd_, 1) == 0;
  }
  ~Listening() { close(fd_); }
  bool bound() const { return bound_; }

 private:
  int fd_ = -1;
  bool bound_ = false;
};

class InfraTest : public ::testing::Test {
 protected:
  // A small range of its own, so that tests in parallel rarely meet (and
  // the probe skips ports another test holds), below the kernel's ephemeral
  // ports (32768-60999), which any outgoing connection may hold.
  static constexpr int kFirst = 31400;
  static constexpr int kLast = 31409;

  InfraTest()
      : mesh_("all",
              [](MeshConfig& c) {
                c.local_port_first = kFirst;
                c.local_port_last = kLast;
                c.deploy_domain = "apps.test";
              }),
        infra_(infra::v1::InfraService::NewStub(mesh_.channel())),
        projects_(projects::v1::ProjectService::NewStub(mesh_.channel())) {}

  std::string CreateProject(const std::string& token, const std::string& name) {
    projects::v1::CreateProjectRequest req;
    req.mutable_project()->set_name(name);
    projects::v1::CreateProjectResponse resp;
    grpc::Status s = projects_->CreateProject(TestMesh::Context(token).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.project().id();
  }

  grpc::Status Allocate(const std::string& token, const std::string& project,
                        const std::string& service, infra::v1::Allocation* out, int preferred = 0,
                        const std::string& request_id = "") {
    infra::v1::AllocatePortRequest req;
    req.set_project_id(project);
    req.set_service(service);
    req.set_preferred_port(preferred);
    req.set_request_id(request_id);
    infra::v1::AllocatePortResponse resp;
    grpc::Status s = infra_->AllocatePort(TestMesh::Context(token).get(), req, &resp);
    if (out) *out = resp.allocation();
    return s;
  }

  grpc::Status Release(const std::string& token, const std::string& id, bool confirm,
                       infra::v1::Allocation* out = nullptr, const std::string& request_id = "") {
    infra::v1::ReleaseAllocationRequest req;
    req.set_allocation_id(id);
    req.set_confirm(confirm);
    req.set_request_id(request_id);
    infra::v1::ReleaseAllocationResponse resp;
    grpc::Status s = infra_->ReleaseAllocation(TestMesh::Context(token).get(), req, &resp);
    if (out) *out = resp.allocation();
    return s;
  }

  std::vector<infra::v1::Allocation> List(const std::string& token, const std::string& owner = "") {
    infra::v1::ListAllocationsRequest req;
    req.set_owner_id(owner);
    req.set_page_size(2);
    std::vector<infra::v1::Allocation> all;
    while (true) {
      infra::v1::ListAllocationsResponse resp;
      grpc::Status s = infra_->ListAllocations(TestMesh::Context(token).get(), req, &resp);
      EXPECT_TRUE(s.ok()) << s.error_message();
      all.insert(all.end(), resp.allocations().begin(), resp.allocations().end());
      if (!s.ok() || resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    return all;
  }

  TestMesh mesh_;
  std::unique_ptr<infra::v1::InfraService::Stub> infra_;
  std::unique_ptr<projects::v1::ProjectService::Stub> projects_;
};

TEST_F(InfraTest, TheMachineTheMeshRunsOnIsTheReadyServerLocal) {
  auto [alice_id, alice] = mesh_.NewUser("alice");
  infra::v1::ListServersRequest req;
  infra::v1::ListServersResponse resp;
  grpc::Status first = infra_->ListServers(TestMesh::Context(alice).get(), req, &resp);
  ASSERT_TRUE(first.ok()) << first.error_message();
  ASSERT_EQ(resp.servers_size(), 1);
  const auto& local = resp.servers(0);
  EXPECT_EQ(local.name(), "local");
  EXPECT_EQ(local.kind(), infra::v1::SERVER_KIND_LOCAL);
  EXPECT_EQ(local.status(), infra::v1::SERVER_STATUS_READY);
  EXPECT_EQ(local.port_range_start(), kFirst);
  EXPECT_EQ(local.port_range_end(), kLast);

  infra::v1::GetServerRequest get;
  get.set_server_id(local.id());
  infra::v1::GetServerResponse got;
  ASSERT_TRUE(infra_->GetServer(TestMesh::Context(alice).get(), get, &got).ok());
  EXPECT_EQ(got.server().name(), "local");
  get.set_server_id("srv_nope");
  EXPECT_EQ(infra_->GetServer(TestMesh::Context(alice).get(), get, &got).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // A restart keeps the one server (and its id).
  mesh_.Restart();
  infra_ = infra::v1::InfraService::NewStub(mesh_.channel());
  infra::v1::ListServersResponse again;
  grpc::Status listed = infra_->ListServers(TestMesh::Context(alice).get(), req, &again);
  ASSERT_TRUE(listed.ok()) << listed.error_message();
  ASSERT_EQ(again.servers_size(), 1);
  EXPECT_EQ(again.servers(0).id(), local.id());
}

TEST_F(InfraTest, AServiceGetsOnePortOfTheRangeAndKeepsIt) {
  auto [alice_id, alice] = mesh_.NewUser("alice");
  const std::string shop = CreateProject(alice, "shop");
  infra::v1::Allocation web;
  ASSERT_TRUE(Allocate(alice, shop, "", &web).ok());
  EXPECT_EQ(web.service(), "web");
  EXPECT_EQ(web.owner_id(), alice_id);
  EXPECT_GE(web.port(), kFirst);
  EXPECT_LE(web.port(), kLast);
  std::string host = shop;
  std::replace(host.begin(), host.end(), '_', '-');
  EXPECT_EQ(web.hostname(), host + ".apps.test");

  infra::v1::Allocation again;
  ASSERT_TRUE(Allocate(alice, shop, "web", &again).ok());
  EXPECT_EQ(again.id(), web.id()) << "a service that holds a port gets it back";
  infra::v1::Allocation api;
  ASSERT_TRUE(Allocate(alice, shop, "api", &api).ok());
  EXPECT_NE(api.port(), web.port());
  EXPECT_EQ(api.hostname(), "api." + host + ".apps.test");

  // The same request_id answers the same, even after the allocation moved on.
  infra::v1::Allocation first, retried;
  const std::string other = CreateProject(alice, "other");
  ASSERT_TRUE(Allocate(alice, other, "web", &first, 0, "req-1").ok());
  ASSERT_TRUE(Allocate(alice, other, "web", &retried, 0, "req-1").ok());
  EXPECT_EQ(retried.id(), first.id());
  EXPECT_EQ(Allocate(alice, shop, "web", nullptr, 0, "req-1").error_code(),
            grpc::StatusCode::FAILED_PRECONDITION)
      << "a request_id used for another allocation";
}

TEST_F(InfraTest, APreferredPortIsHonouredAndAPortInUseOnTheMachineIsSkipped) {
  auto [alice_id, alice] = mesh_.NewUser("alice");
  const std::string shop = CreateProject(alice, "shop");
  infra::v1::Allocation a;
  ASSERT_TRUE(Allocate(alice, shop, "a", &a, kFirst + 5).ok());
  EXPECT_EQ(a.port(), kFirst + 5);
  // Another process listens on the lowest free port: it is not handed out.
  Listening squatter(kFirst);
  ASSERT_TRUE(squatter.bound());
  infra::v1::Allocation b;
  ASSERT_TRUE(Allocate(alice, shop, "b", &b, kFirst).ok());
  EXPECT_NE(b.port(), kFirst);
  EXPECT_NE(b.port(), kFirst + 5);

  grpc::Status outside = Allocate(alice, shop, "c", nullptr, 80);
  EXPECT_EQ(outside.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(outside.error_message(), HasSubstr("preferred_port"));
}

TEST_F(InfraTest, AFullRangeIsResourceExhausted) {
  auto [alice_id, alice] = mesh_.NewUser("alice");
  const std::string shop = CreateProject(alice, "shop");
  std::set<int> ports;
  for (int i = 0; i <= kLast - kFirst; ++i) {
    infra::v1::Allocation a;
    grpc::Status s = Allocate(alice, shop, "svc-" + std::to_string(i), &a);
    if (!s.ok()) break;  // a port another process holds right now
    ports.insert(a.port());
  }
  EXPECT_GE(ports.size(), 5u);
  grpc::Status full = Allocate(alice, shop, "one-more", nullptr);
  EXPECT_EQ(full.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << full.error_message();
  EXPECT_THAT(full.error_message(), HasSubstr("no free port"));
}

TEST_F(InfraTest, ConcurrentRequestsNeverShareAPort) {
  const std::string alice = mesh_.NewUser("alice").second;
  const std::string shop = CreateProject(alice, "shop");
  std::vector<infra::v1::Allocation> got(8);
  std::vector<grpc::Status> status(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back(
        [&, i] { status[i] = Allocate(alice, shop, "svc-" + std::to_string(i), &got[i]); });
  }
  for (auto& t : threads) t.join();
  std::set<int> ports;
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(status[i].ok()) << status[i].error_message();
    ports.insert(got[i].port());
  }
  EXPECT_EQ(ports.size(), 8u);
}

TEST_F(InfraTest, OthersProjectsAndBadServicesAreRefused) {
  auto [alice_id, alice] = mesh_.NewUser("alice");
  auto [bob_id, bob] = mesh_.NewUser("bob");
  const std::string shop = CreateProject(alice, "shop");
  const std::string blog = CreateProject(alice, "blog");
  EXPECT_EQ(Allocate(bob, shop, "web", nullptr).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Allocate(alice, "prj_nope", "web", nullptr).error_code(), grpc::StatusCode::NOT_FOUND);
  for (const std::string& bad :
       std::vector<std::string>{"Web", "-x", "a_b", "x.y", std::string(64, 'a')}) {
    grpc::Status s = Allocate(alice, shop, bad, nullptr);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_THAT(s.error_message(), HasSubstr("service")) << bad;
  }
  // A worker's agent token reaches only its own project.
  const std::string agent = mesh_.MintWorkerToken(alice_id, shop);
  EXPECT_TRUE(Allocate(agent, shop, "web", nullptr).ok());
  EXPECT_EQ(Allocate(agent, blog, "web", nullptr).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(InfraTest, EachOwnerListsTheirOwnAndOnlyTheOwnerReleasesWithConfirm) {
  auto [alice_id, alice] = mesh_.NewUser("alice");
  auto [bob_id, bob] = mesh_.NewUser("bob");
  const std::string shop = CreateProject(alice, "shop");
  const std::string blog = CreateProject(bob, "blog");
  infra::v1::Allocation a1, a2, b1;
  ASSERT_TRUE(Allocate(alice, shop, "web", &a1).ok());
  ASSERT_TRUE(Allocate(alice, shop, "api", &a2).ok());
  ASSERT_TRUE(Allocate(bob, blog, "web", &b1).ok());
  EXPECT_EQ(List(alice).size(), 2u);
  EXPECT_EQ(List(bob).size(), 1u);
  EXPECT_EQ(List(mesh_.admin_token()).size(), 3u);
  infra::v1::ListAllocationsRequest theirs;
  theirs.set_owner_id(alice_id);
  infra::v1::ListAllocationsResponse resp;
  EXPECT_EQ(infra_->ListAllocations(TestMesh::Context(bob).get(), theirs, &resp).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  grpc::Status unconfirmed = Release(alice, a1.id(), false);
  EXPECT_EQ(unconfirmed.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(unconfirmed.error_message(), HasSubstr("confirm"));
  EXPECT_THAT(unconfirmed.error_message(), HasSubstr(std::to_string(a1.port())));
  EXPECT_EQ(Release(bob, a1.id(), true).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Release(mesh_.admin_token(), a1.id(), true).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(List(alice).size(), 2u) << "nothing was released by the refusals";

  infra::v1::Allocation released, retried;
  ASSERT_TRUE(Release(alice, a1.id(), true, &released, "rel-1").ok());
  EXPECT_EQ(released.port(), a1.port());
  ASSERT_TRUE(Release(alice, a1.id(), true, &retried, "rel-1").ok()) << "a retried release";
  EXPECT_EQ(retried.id(), a1.id());
  EXPECT_EQ(Release(alice, a1.id(), true).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(List(alice).size(), 1u);

  // The freed port and service can be taken again.
  infra::v1::Allocation again;
  ASSERT_TRUE(Allocate(alice, shop, "web", &again, a1.port()).ok());
  EXPECT_EQ(again.port(), a1.port());
  EXPECT_NE(again.id(), a1.id());
}

// A wide range, so that the per-owner bound is what stops.
class InfraWideRangeTest : public ::testing::Test {
 protected:
  InfraWideRangeTest()
      : mesh_("all",
              [](MeshConfig& c) {
                c.local_port_first = 31500;
                c.local_port_last = 31699;
              }),
        infra_(infra::v1::InfraService::NewStub(mesh_.channel())),
        projects_(projects::v1::ProjectService::NewStub(mesh_.channel())) {}
  TestMesh mesh_;
  std::unique_ptr<infra::v1::InfraService::Stub> infra_;
  std::unique_ptr<projects::v1::ProjectService::Stub> projects_;
};

TEST_F(InfraWideRangeTest, OneUserHoldsAtMostSixtyFourPortsOfASharedServer) {
  auto [alice_id, alice] = mesh_.NewUser("alice");
  auto [bob_id, bob] = mesh_.NewUser("bob");
  std::string project_of[2];
  for (int i = 0; i < 2; ++i) {
    projects::v1::CreateProjectRequest req;
    req.mutable_project()->set_name("shop");
    projects::v1::CreateProjectResponse resp;
    ASSERT_TRUE(
        projects_->CreateProject(TestMesh::Context(i == 0 ? alice : bob).get(), req, &resp).ok());
    project_of[i] = resp.project().id();
  }
  auto allocate = [&](const std::string& token, const std::string& project, int i) {
    infra::v1::AllocatePortRequest req;
    req.set_project_id(project);
    req.set_service("svc-" + std::to_string(i));
    infra::v1::AllocatePortResponse resp;
    return infra_->AllocatePort(TestMesh::Context(token).get(), req, &resp);
  };
  int made = 0;
  for (int i = 0; i < 64; ++i) made += allocate(alice, project_of[0], i).ok() ? 1 : 0;
  EXPECT_GE(made, 60);  // a port another process holds right now is skipped, not counted
  grpc::Status more = grpc::Status::OK;
  for (int i = 64; i < 70 && more.ok(); ++i) more = allocate(alice, project_of[0], i);
  EXPECT_EQ(more.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << more.error_message();
  EXPECT_THAT(more.error_message(), HasSubstr("release one"));
  EXPECT_TRUE(allocate(bob, project_of[1], 0).ok()) << "others still get ports";
}

TEST_F(InfraTest, ThePortsOfADeletedProjectAreFreedByTheScheduledSweep) {
  auto [alice_id, alice] = mesh_.NewUser("alice");
  const std::string gone = CreateProject(alice, "gone");
  const std::string kept = CreateProject(alice, "kept");
  infra::v1::Allocation a, b, c;
  ASSERT_TRUE(Allocate(alice, gone, "web", &a).ok());
  ASSERT_TRUE(Allocate(alice, gone, "api", &b).ok());
  ASSERT_TRUE(Allocate(alice, kept, "web", &c).ok());
  projects::v1::DeleteProjectRequest del;
  del.set_project_id(gone);
  projects::v1::DeleteProjectResponse deleted;
  ASSERT_TRUE(projects_->DeleteProject(TestMesh::Context(alice).get(), del, &deleted).ok());
  EXPECT_EQ(List(alice).size(), 3u) << "held until the sweep";

  auto scheduler = scheduler::v1::SchedulerService::NewStub(mesh_.channel());
  scheduler::v1::RunTaskNowRequest run;
  run.set_task_id("infra.allocations.free_orphans");
  scheduler::v1::RunTaskNowResponse ran;
  ASSERT_TRUE(scheduler->RunTaskNow(TestMesh::Context(mesh_.admin_token()).get(), run, &ran).ok());
  auto jobs = jobs::v1::JobService::NewStub(mesh_.channel());
  auto job =
      testing::WaitForJob(*jobs, mesh_.admin_token(), ran.job().id(), std::chrono::seconds(30));
  ASSERT_EQ(job.state(), jobs::v1::JOB_STATE_SUCCEEDED) << job.error().message();
  EXPECT_EQ(job.result().fields().at("allocations_freed").number_value(), 2);
  auto left = List(alice);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].id(), c.id());
  // The freed ports are free again.
  infra::v1::Allocation again;
  ASSERT_TRUE(Allocate(alice, kept, "api", &again, a.port()).ok());
  EXPECT_EQ(again.port(), a.port());
}

}  // namespace
}  // namespace orchestrator
