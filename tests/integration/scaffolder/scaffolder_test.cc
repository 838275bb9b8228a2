// ScaffolderService over a whole mesh: built-in templates scaffolded into the
// local git host (git smart HTTP served by the mesh), cloned afresh with the
// user's token, their tests run, their images built and health-checked; and
// repositories made on GitHub (the fake), templates fetched from a git URL.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "orchestrator/scaffolder/v1/scaffolder.grpc.pb.h"
#include "services/common/process/child_process.h"
#include "tests/support/fake_github.h"
#include "tests/support/job_wait.h"
#include "tests/support/run_git.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_mesh.h"

namespace orchestrator {
namespace {
namespace fs = std::filesystem;
using testing::FakeGitHub;
using ::testing::HasSubstr;
using testing::ReadFile;
using testing::TempDir;
using testing::TestMesh;

// git as a user runs it, authenticating with an orchestrator `token`.
testing::GitRun GitAs(const std::string& token, const std::vector<std::string>& args,
                      const std::string& cwd = "/") {
  std::map<std::string, std::string> config;
  if (!token.empty()) config["http.extraHeader"] = "Authorization: Bearer " + token;
  return testing::RunGit(args, cwd, {}, config);
}

// Runs tests/support/check_project.sh on a clone: its output, or why not.
std::pair<int, std::string> CheckProject(const std::string& clone) {
  ChildCommand command;
  command.argv = {"bash", absl::StrCat(PROJECT_SOURCE_DIR, "/tests/support/check_project.sh"),
                  clone};
  command.deadline = absl::Now() + absl::Minutes(3);
  command.stderr_bytes = 1 << 16;
  std::string out;
  command.on_line = [&out](const std::string& line) { absl::StrAppend(&out, line, "\n"); };
  auto exit = RunChild(command);
  if (!exit.ok()) return {-1, std::string(exit.status().message())};
  return {exit->exit_code, out + exit->stderr_tail};
}

class ScaffolderTest : public ::testing::Test {
 protected:
  explicit ScaffolderTest(const std::function<void(MeshConfig&)>& tweak = nullptr)
      : mesh_("all", tweak),
        scaffolder_(scaffolder::v1::ScaffolderService::NewStub(mesh_.channel())),
        projects_(projects::v1::ProjectService::NewStub(mesh_.channel())),
        jobs_(jobs::v1::JobService::NewStub(mesh_.channel())) {}

  std::string CreateProject(const std::string& token, const std::string& name) {
    projects::v1::CreateProjectRequest req;
    req.mutable_project()->set_name(name);
    projects::v1::CreateProjectResponse resp;
    grpc::Status s = projects_->CreateProject(TestMesh::Context(token).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.project().id();
  }

  projects::v1::Project GetProject(const std::string& token, const std::string& id) {
    projects::v1::GetProjectRequest req;
    req.set_project_id(id);
    projects::v1::GetProjectResponse resp;
    grpc::Status s = projects_->GetProject(TestMesh::Context(token).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.project();
  }

  grpc::Status Scaffold(const std::string& token, const scaffolder::v1::ScaffoldRequest& req,
                        jobs::v1::Job* job) {
    scaffolder::v1::ScaffoldResponse resp;
    grpc::Status s = scaffolder_->Scaffold(TestMesh::Context(token).get(), req, &resp);
    *job = resp.job();
    return s;
  }

  jobs::v1::Job WaitForJob(const std::string& token, const std::string& job_id) {
    return testing::WaitForJob(*jobs_, token, job_id, std::chrono::seconds(120));
  }

  TestMesh mesh_;
  std::unique_ptr<scaffolder::v1::ScaffolderService::Stub> scaffolder_;
  std::unique_ptr<projects::v1::ProjectService::Stub> projects_;
  std::unique_ptr<jobs::v1::JobService::Stub> jobs_;
  TempDir scratch_;
};

TEST_F(ScaffolderTest, ListsTheBuiltInTemplatesWithTheirRunContracts) {
  auto [alice_id, alice] = mesh_.NewUser("alice");
  scaffolder::v1::ListTemplatesRequest req;
  scaffolder::v1::ListTemplatesResponse resp;
  ASSERT_TRUE(scaffolder_->ListTemplates(TestMesh::Context(alice).get(), req, &resp).ok());
  std::vector<std::string> ids;
  for (const auto& t : resp.templates()) {
    ids.push_back(t.id());
    EXPECT_GT(t.run_contract().port(), 0) << t.id();
    EXPECT_FALSE(t.run_contract().test_command().empty()) << t.id();
    EXPECT_FALSE(t.files().empty()) << t.id();
  }
  EXPECT_THAT(ids, ::testing::IsSupersetOf({"node-http", "python-http", "static-site"}));

  scaffolder::v1::GetTemplateRequest get;
  get.set_template_id("no-such-template");
  scaffolder::v1::GetTemplateResponse got;
  EXPECT_EQ(scaffolder_->GetTemplate(TestMesh::Context(alice).get(), get, &got).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(ScaffolderTest, BadRequestsAreRefusedAtOnceAndLeaveNothing) {
  auto [alice_id, alice] = mesh_.NewUser("alice");
  auto [bob_id, bob] = mesh_.NewUser("bob");
  const std::string project = CreateProject(alice, "shop");
  scaffolder::v1::ScaffoldRequest req;
  req.set_project_id(project);
  jobs::v1::Job job;

  req.set_template_id("no-such-template");
  EXPECT_EQ(Scaffold(alice, req, &job).error_code(), grpc::StatusCode::NOT_FOUND);

  req.set_template_id("python-http");
  (*req.mutable_answers())["log_level"] = "loud";
  grpc::Status s = Scaffold(alice, req, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("answers.log_level"));

  req.clear_answers();
  (*req.mutable_answers())["no_such_question"] = "x";
  s = Scaffold(alice, req, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("answers.no_such_question"));

  // Another owner's project is NOT_FOUND, as if it did not exist.
  req.clear_answers();
  EXPECT_EQ(Scaffold(bob, req, &job).error_code(), grpc::StatusCode::NOT_FOUND);

  projects::v1::UpdateProjectRequest update;
  update.mutable_project()->set_id(project);
  update.mutable_project()->set_repository_url("https://example.com/shop.git");
  update.mutable_update_mask()->add_paths("repository_url");
  projects::v1::UpdateProjectResponse updated;
  ASSERT_TRUE(projects_->UpdateProject(TestMesh::Context(alice).get(), update, &updated).ok());
  s = Scaffold(alice, req, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("replace_repository"));
  EXPECT_EQ(GetProject(alice, project).template_id(), "");
}

// Each built-in template: scaffolded, recorded, cloned afresh, its tests,
// image and health check pass (tests/support/check_project.sh).
class BuiltInTemplateTest : public ScaffolderTest,
                            public ::testing::WithParamInterface<std::string> {};

TEST_P(BuiltInTemplateTest, ScaffoldsARepositoryThatBuildsTestsAndServes) {
  const std::string template_id = GetParam();
  auto [alice_id, alice] = mesh_.NewUser("alice");
  const std::string project = CreateProject(alice, "shop");
  scaffolder::v1::ScaffoldRequest req;
  req.set_project_id(project);
  req.set_template_id(template_id);
  req.set_request_id("scaffold-1");
  if (template_id != "static-site") (*req.mutable_answers())["api_key"] = "sk-very-secret-1";
  jobs::v1::Job job;
  grpc::Status s = Scaffold(alice, req, &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(job.kind(), "scaffold");
  // The same request_id is the same job.
  jobs::v1::Job again;
  ASSERT_TRUE(Scaffold(alice, req, &again).ok());
  EXPECT_EQ(again.id(), job.id());

  job = WaitForJob(alice, job.id());
  ASSERT_EQ(job.state(), jobs::v1::JOB_STATE_SUCCEEDED) << job.ShortDebugString();
  const std::string url = job.result().fields().at("repository_url").string_value();
  const std::string sha = job.result().fields().at("commit_sha").string_value();
  EXPECT_EQ(sha.size(), 40u);

  // Recorded on the project: the repository, the template, the answers, the contract.
  const auto p = GetProject(alice, project);
  EXPECT_EQ(p.repository_url(), url);
  EXPECT_EQ(p.template_id(), template_id);
  EXPECT_FALSE(p.template_version().empty());
  EXPECT_FALSE(p.template_answers().empty());
  EXPECT_EQ(p.template_answers().count("api_key"), 0u);
  EXPECT_EQ(p.run_contract().health_path(), "/healthz");

  // Cloned afresh over smart HTTP with the user's own token.
  const std::string clone = scratch_.Path("clone");
  auto cloned = GitAs(alice, {"clone", "-q", url, clone});
  ASSERT_EQ(cloned.exit_code, 0) << cloned.err;
  EXPECT_EQ(GitAs("", {"rev-parse", "HEAD"}, clone).out, sha + "\n");
  EXPECT_THAT(GitAs("", {"log", "--format=%s"}, clone).out,
              HasSubstr("from template " + template_id + " v"));
  EXPECT_EQ(GitAs("", {"rev-list", "--count", "HEAD"}, clone).out, "1\n");
  const std::string record = ReadFile(clone + "/.orchestrator-answers.json");
  EXPECT_THAT(record, HasSubstr("\"_template\": \"" + template_id + "\""));
  // The secret answer is in no file of the repository, nor in its history.
  EXPECT_EQ(GitAs("", {"grep", "-q", "sk-very-secret-1", "HEAD"}, clone).exit_code, 1);

  // Its tests pass, its image builds, the container answers its health path.
  auto [code, output] = CheckProject(clone);
  EXPECT_EQ(code, 0) << output;
}

INSTANTIATE_TEST_SUITE_P(Templates, BuiltInTemplateTest,
                         ::testing::Values("python-http", "node-http", "static-site"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

TEST_F(ScaffolderTest, OnlyTheOwnerAndTheProjectsAgentsReachItsRepository) {
  auto [alice_id, alice] = mesh_.NewUser("alice");
  auto [bob_id, bob] = mesh_.NewUser("bob");
  const std::string shop = CreateProject(alice, "shop");
  const std::string blog = CreateProject(alice, "blog");
  std::map<std::string, std::string> urls;
  for (const auto& project : {shop, blog}) {
    scaffolder::v1::ScaffoldRequest req;
    req.set_project_id(project);
    req.set_template_id("static-site");
    jobs::v1::Job job;
    ASSERT_TRUE(Scaffold(alice, req, &job).ok());
    job = WaitForJob(alice, job.id());
    ASSERT_EQ(job.state(), jobs::v1::JOB_STATE_SUCCEEDED) << job.ShortDebugString();
    urls[project] = job.result().fields().at("repository_url").string_value();
  }
  const std::string url = urls[shop];

  // Bob: neither clone nor push; no token at all: refused.
  EXPECT_NE(GitAs(bob, {"clone", "-q", url, scratch_.Path("bob")}).exit_code, 0);
  EXPECT_FALSE(fs::exists(scratch_.Path("bob/.orchestrator-answers.json")));
  EXPECT_NE(GitAs("", {"clone", "-q", url, scratch_.Path("anonymous")}).exit_code, 0);

  // Alice pushes; Bob's push to the same repository is refused.
  const std::string mine = scratch_.Path("alice");
  ASSERT_EQ(GitAs(alice, {"clone", "-q", url, mine}).exit_code, 0);
  scratch_.Write("alice/NEWS", "hello\n");
  ASSERT_EQ(GitAs("", {"add", "NEWS"}, mine).exit_code, 0);
  ASSERT_EQ(GitAs("", {"commit", "-qm", "news"}, mine).exit_code, 0);
  auto bob_push = GitAs(bob, {"push", "-q", "origin", "HEAD"}, mine);
  EXPECT_NE(bob_push.exit_code, 0);
  auto alice_push = GitAs(alice, {"push", "-q", "origin", "HEAD"}, mine);
  EXPECT_EQ(alice_push.exit_code, 0) << alice_push.err;

  // A worker's agent token for shop reaches shop's repository, not blog's.
  const std::string agent = mesh_.MintWorkerToken(alice_id, shop);
  EXPECT_EQ(GitAs(agent, {"ls-remote", urls[shop]}).exit_code, 0);
  EXPECT_NE(GitAs(agent, {"ls-remote", urls[blog]}).exit_code, 0);
  // It fetches its project, but never pushes to it: the platform does.
  const std::string agents = scratch_.Path("agent");
  ASSERT_EQ(GitAs(agent, {"clone", "-q", url, agents}).exit_code, 0);
  scratch_.Write("agent/NEWS", "pushed by an agent\n");
  ASSERT_EQ(GitAs("", {"add", "NEWS"}, agents).exit_code, 0);
  ASSERT_EQ(GitAs("", {"commit", "-qm", "agent"}, agents).exit_code, 0);
  auto agent_push = GitAs(agent, {"push", "-q", "origin", "HEAD"}, agents);
  EXPECT_NE(agent_push.exit_code, 0);
  EXPECT_THAT(agent_push.err, ::testing::HasSubstr("403"));
  auto head = GitAs(alice, {"ls-remote", url, "refs/heads/main"});
  EXPECT_THAT(head.out, ::testing::Not(::testing::HasSubstr(
                            GitAs("", {"rev-parse", "HEAD"}, agents).out.substr(0, 40))));
}

// The fake GitHub and the token file the mesh reads, made before the mesh.
struct FakeGitHubSide {
  FakeGitHub fake;
  TempDir secrets;
  std::string token_file =
      secrets.Write("github.token", absl::StrCat(testing::kFakeGitHubToken, "\n"));

  // git with the credentials GitHub takes for HTTPS (the token as password).
  testing::GitRun Git(const std::vector<std::string>& args, const std::string& cwd = "/") const {
    return testing::RunGit(
        args, cwd, {},
        {{"http.extraHeader",
          "Authorization: Basic " +
              absl::Base64Escape(absl::StrCat("x-access-token:", testing::kFakeGitHubToken))}});
  }
};

// The mesh with --git_host=github, against the fake.
class ScaffolderOnGitHubTest : protected FakeGitHubSide, public ScaffolderTest {
 protected:
  ScaffolderOnGitHubTest()
      : ScaffolderTest([this](MeshConfig& c) {
          c.git_host = "github";
          c.github_api_url = fake.url();
          c.github_token_file = token_file;
        }) {}
};

TEST_F(ScaffolderOnGitHubTest, MakesTheRepositoryOnceAndPushesTheVerifiedCommit) {
  auto [alice_id, alice] = mesh_.NewUser("alice");
  const std::string project = CreateProject(alice, "shop");
  scaffolder::v1::ScaffoldRequest req;
  req.set_project_id(project);
  req.set_template_id("static-site");
  jobs::v1::Job job;
  ASSERT_TRUE(Scaffold(alice, req, &job).ok());
  job = WaitForJob(alice, job.id());
  ASSERT_EQ(job.state(), jobs::v1::JOB_STATE_SUCCEEDED) << job.ShortDebugString();
  const std::string url = job.result().fields().at("repository_url").string_value();
  EXPECT_EQ(url, fake.url() + "/octocat/shop.git");
  EXPECT_EQ(job.result().fields().at("repository").string_value(), "octocat/shop");
  EXPECT_THAT(fake.Created(), ::testing::ElementsAre("octocat/shop"));
  EXPECT_EQ(GetProject(alice, project).repository_url(), url);

  const std::string clone = scratch_.Path("clone");
  auto cloned = Git({"clone", "-q", url, clone});
  ASSERT_EQ(cloned.exit_code, 0) << cloned.err;
  EXPECT_EQ(Git({"rev-parse", "HEAD"}, clone).out,
            job.result().fields().at("commit_sha").string_value() + "\n");
}

TEST_F(ScaffolderOnGitHubTest, ANameTakenBySomeoneElseFailsTheJobAndRecordsNothing) {
  auto [alice_id, alice] = mesh_.NewUser("alice");
  fake.Control("POST", "repos", R"({"full_name": "octocat/taken"})");
  const std::string project = CreateProject(alice, "taken");
  scaffolder::v1::ScaffoldRequest req;
  req.set_project_id(project);
  req.set_template_id("static-site");
  jobs::v1::Job job;
  ASSERT_TRUE(Scaffold(alice, req, &job).ok());
  job = WaitForJob(alice, job.id());
  ASSERT_EQ(job.state(), jobs::v1::JOB_STATE_FAILED) << job.ShortDebugString();
  EXPECT_THAT(job.error().message(), HasSubstr("'taken' already exists on github"));
  EXPECT_THAT(job.error().message(), HasSubstr("repository_name"));
  EXPECT_TRUE(fake.Created().empty());
  EXPECT_EQ(GetProject(alice, project).repository_url(), "");
  EXPECT_EQ(GetProject(alice, project).template_id(), "");
}

TEST_F(ScaffolderOnGitHubTest, ATemplateFromAGitUrlAtATagIsFetchedAndUsed) {
  auto [alice_id, alice] = mesh_.NewUser("alice");
  // A team's own template, published as a public repository with a tag.
  fake.Control("POST", "repos", R"({"full_name": "octocat/team-template", "private": false})");
  const std::string tree = scratch_.Path("template");
  fs::copy(absl::StrCat(PROJECT_SOURCE_DIR, "/services/scaffolder/templates/static-site"), tree,
           fs::copy_options::recursive);
  std::string manifest = ReadFile(tree + "/template.json");
  const std::string id_line = "\"id\": \"static-site\"";
  ASSERT_NE(manifest.find(id_line), std::string::npos);
  manifest.replace(manifest.find(id_line), id_line.size(), "\"id\": \"team-site\"");
  scratch_.Write("template/template.json", manifest);
  for (std::vector<std::string> step : {std::vector<std::string>{"init", "-q"},
                                        {"add", "-A"},
                                        {"commit", "-qm", "team site"},
                                        {"tag", "v1"}}) {
    ASSERT_EQ(Git(step, tree).exit_code, 0) << step[0];
  }
  const std::string template_url = fake.url() + "/octocat/team-template.git";
  auto pushed = Git({"push", "-q", template_url, "main", "v1"}, tree);
  ASSERT_EQ(pushed.exit_code, 0) << pushed.err;

  scaffolder::v1::GetTemplateRequest get;
  get.mutable_source()->set_git_url(template_url);
  get.mutable_source()->set_git_tag("v1");
  scaffolder::v1::GetTemplateResponse got;
  grpc::Status s = scaffolder_->GetTemplate(TestMesh::Context(alice).get(), get, &got);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(got.template_().id(), "team-site");
  EXPECT_EQ(got.template_().source().git_tag(), "v1");

  const std::string project = CreateProject(alice, "site");
  scaffolder::v1::ScaffoldRequest req;
  req.set_project_id(project);
  *req.mutable_template_source() = get.source();
  jobs::v1::Job job;
  s = Scaffold(alice, req, &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  job = WaitForJob(alice, job.id());
  ASSERT_EQ(job.state(), jobs::v1::JOB_STATE_SUCCEEDED) << job.ShortDebugString();
  EXPECT_EQ(GetProject(alice, project).template_id(), "team-site");

  // A tag that is not there, and a source on the server's own disk.
  get.mutable_source()->set_git_tag("v9");
  EXPECT_EQ(scaffolder_->GetTemplate(TestMesh::Context(alice).get(), get, &got).error_code(),
            grpc::StatusCode::NOT_FOUND);
  get.mutable_source()->set_git_url("file:///etc");
  s = scaffolder_->GetTemplate(TestMesh::Context(alice).get(), get, &got);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("source.git_url"));
}

}  // namespace
}  // namespace orchestrator
