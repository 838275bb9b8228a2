// The "git" capability over a whole mesh: a developer worker fetches its own
// project's repository from the mesh's local git host, inside its sandbox,
// through the egress proxy, with its own token (no --agent_egress_allow);
// another project's repository stays out of reach, and nothing is pushed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "orchestrator/agents/v1/agents.grpc.pb.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "orchestrator/scaffolder/v1/scaffolder.grpc.pb.h"
#include "tests/support/job_wait.h"
#include "tests/support/run_git.h"
#include "tests/support/scripted_worker.h"
#include "tests/support/test_mesh.h"

namespace orchestrator::agents {
namespace {

namespace v1 = ::orchestrator::agents::v1;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using testing::TestMesh;

// git inside the sandbox, with the worker's token as the password (smart
// HTTP's Basic), fed by a credential helper: nothing secret on disk.
std::string GitWithToken(const std::string& args) {
  return absl::StrCat(
      "git -c credential.helper='!f(){ echo username=agent; echo "
      "password=$ORCHESTRATOR_TOKEN; }; f' ",
      args, " 2>&1");
}

class WorkerRepositoryTest : public ::testing::Test {
 protected:
  WorkerRepositoryTest()
      : agents_(v1::AgentService::NewStub(mesh_.channel())),
        projects_(projects::v1::ProjectService::NewStub(mesh_.channel())),
        scaffolder_(scaffolder::v1::ScaffolderService::NewStub(mesh_.channel())),
        jobs_(jobs::v1::JobService::NewStub(mesh_.channel())) {
    std::tie(alice_id_, alice_) = mesh_.NewUser("alice");
  }

  // A project scaffolded from static-site onto the local git host; its id
  // and repository URL.
  std::pair<std::string, std::string> ScaffoldedProject(const std::string& name) {
    projects::v1::CreateProjectRequest create;
    create.mutable_project()->set_name(name);
    projects::v1::CreateProjectResponse created;
    grpc::Status s = projects_->CreateProject(TestMesh::Context(alice_).get(), create, &created);
    EXPECT_TRUE(s.ok()) << s.error_message();
    scaffolder::v1::ScaffoldRequest req;
    req.set_project_id(created.project().id());
    req.set_template_id("static-site");
    scaffolder::v1::ScaffoldResponse resp;
    s = scaffolder_->Scaffold(TestMesh::Context(alice_).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    jobs::v1::Job job =
        testing::WaitForJob(*jobs_, alice_, resp.job().id(), std::chrono::seconds(120));
    EXPECT_EQ(job.state(), jobs::v1::JOB_STATE_SUCCEEDED) << job.ShortDebugString();
    return {created.project().id(), job.result().fields().at("repository_url").string_value()};
  }

  v1::Worker StartWorker(const std::string& project_id, const std::vector<std::string>& caps) {
    v1::StartWorkerRequest req;
    req.mutable_config()->set_network_mode(v1::NETWORK_MODE_OPEN);
    req.mutable_config()->set_project_id(project_id);
    for (const auto& c : caps) req.mutable_config()->add_capabilities(c);
    return testing::ScriptedWorkers(agents_.get(), alice_).StartReady(req);
  }

  std::string Inside(const std::string& worker_id, const std::string& command) {
    return testing::ScriptedWorkers(agents_.get(), alice_).Run(worker_id, command).summary();
  }

  TestMesh mesh_;
  std::unique_ptr<v1::AgentService::Stub> agents_;
  std::unique_ptr<projects::v1::ProjectService::Stub> projects_;
  std::unique_ptr<scaffolder::v1::ScaffolderService::Stub> scaffolder_;
  std::unique_ptr<jobs::v1::JobService::Stub> jobs_;
  std::string alice_id_, alice_;
};

TEST_F(WorkerRepositoryTest, AGitWorkerClonesItsOwnProjectOnlyAndCannotPush) {
  ASSERT_TRUE(mesh_.config().agent_egress_allow.empty());
  const auto [shop, shop_url] = ScaffoldedProject("shop");
  const auto [blog, blog_url] = ScaffoldedProject("blog");
  ASSERT_THAT(shop_url, StartsWith("http://127.0.0.1:"));

  const v1::Worker w = StartWorker(shop, {"git"});
  const std::string cloned = Inside(w.id(), GitWithToken("clone -q " + shop_url + " repo") +
                                                " && ls repo && git -C repo log --format=%s");
  EXPECT_THAT(cloned, StartsWith("exit 0\n")) << cloned;
  EXPECT_THAT(cloned, HasSubstr("README.md")) << cloned;

  // Another project of the same owner on the same host: the proxy lets the
  // connection through (same host:port), the git host refuses the token.
  const std::string other = Inside(w.id(), GitWithToken("clone -q " + blog_url + " other"));
  EXPECT_THAT(other, Not(StartsWith("exit 0"))) << other;
  EXPECT_THAT(other, HasSubstr("not found")) << other;

  // A change the agent commits never reaches the repository from inside.
  const std::string pushed =
      Inside(w.id(),
             "cd repo && echo agent >> README.md && git -c user.name=a -c user.email=a@b "
             "commit -qam agent && " +
                 GitWithToken("push -q origin HEAD:refs/heads/main"));
  EXPECT_THAT(pushed, Not(StartsWith("exit 0"))) << pushed;
  EXPECT_THAT(pushed, HasSubstr("403")) << pushed;
  auto head = testing::RunGit({"ls-remote", shop_url, "refs/heads/main"}, "/", {},
                              {{"http.extraHeader", "Authorization: Bearer " + alice_}});
  const std::string inside_head =
      Inside(w.id(), "git -C repo rev-parse HEAD").substr(std::string("exit 0\n").size());
  EXPECT_THAT(head.out, Not(HasSubstr(inside_head.substr(0, 40)))) << head.out;
}

TEST_F(WorkerRepositoryTest, WithoutTheGitCapabilityTheRepositoryIsNotReachable) {
  const auto [shop, shop_url] = ScaffoldedProject("shop");
  const v1::Worker w = StartWorker(shop, {"curl"});
  const std::string refused = Inside(w.id(), GitWithToken("clone -q " + shop_url + " repo"));
  EXPECT_THAT(refused, Not(StartsWith("exit 0"))) << refused;
  EXPECT_THAT(refused, HasSubstr("403")) << refused;  // the proxy's answer
}

TEST_F(WorkerRepositoryTest, AnotherOwnersProjectIsNotFoundAtStart) {
  const auto [shop, shop_url] = ScaffoldedProject("shop");
  auto [bob_id, bob] = mesh_.NewUser("bob");
  v1::StartWorkerRequest req;
  req.mutable_config()->set_network_mode(v1::NETWORK_MODE_OPEN);
  req.mutable_config()->set_project_id(shop);
  req.mutable_config()->add_capabilities("git");
  req.mutable_config()->set_agent_type(v1::AGENT_TYPE_SCRIPTED);
  v1::StartWorkerResponse resp;
  grpc::Status s = agents_->StartWorker(TestMesh::Context(bob).get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
}

}  // namespace
}  // namespace orchestrator::agents
