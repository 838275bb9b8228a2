// ScaffolderService over a whole mesh: built-in templates scaffolded into the
// local git host (git smart HTTP served by the mesh), cloned afresh with the
// user's token, their tests run, their images built and health-checked.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "orchestrator/admin/v1/admin.grpc.pb.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "orchestrator/scaffolder/v1/scaffolder.grpc.pb.h"
#include "services/common/crypto/secret_box.h"
#include "tests/support/test_mesh.h"

namespace orchestrator {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::TestMesh;

struct Shell {
  int code;
  std::string output;
};

// Runs a shell command line; its standard output and error together.
Shell Sh(const std::string& command) {
  std::string out;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// git with nothing of the host's configuration, authenticating with `token`.
std::string Git(const std::string& token) {
  return absl::StrCat("env -i PATH=/usr/bin:/bin HOME=/nonexistent GIT_CONFIG_NOSYSTEM=1 ",
                      "GIT_TERMINAL_PROMPT=0 git -c ",
                      Quote("http.extraHeader=Authorization: Bearer " + token));
}

class ScaffolderTest : public ::testing::Test {
 protected:
  ScaffolderTest()
      : scaffolder_(scaffolder::v1::ScaffolderService::NewStub(mesh_.channel())),
        projects_(projects::v1::ProjectService::NewStub(mesh_.channel())),
        jobs_(jobs::v1::JobService::NewStub(mesh_.channel())),
        scratch_(fs::temp_directory_path() / NewId("scaffold-test-")) {
    fs::create_directories(scratch_);
  }
  ~ScaffolderTest() override { fs::remove_all(scratch_); }

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

  // Streams the job until it ends; returns it as it ended.
  jobs::v1::Job WaitForJob(const std::string& token, const std::string& job_id) {
    jobs::v1::WatchJobRequest req;
    req.set_job_id(job_id);
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    auto reader = jobs_->WatchJob(&ctx, req);
    jobs::v1::WatchJobResponse event;
    while (reader->Read(&event)) {
    }
    reader->Finish().IgnoreError();
    jobs::v1::GetJobRequest get;
    get.set_job_id(job_id);
    jobs::v1::GetJobResponse got;
    EXPECT_TRUE(jobs_->GetJob(TestMesh::Context(token).get(), get, &got).ok());
    return got.job();
  }

  std::string Read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  TestMesh mesh_;
  std::unique_ptr<scaffolder::v1::ScaffolderService::Stub> scaffolder_;
  std::unique_ptr<projects::v1::ProjectService::Stub> projects_;
  std::unique_ptr<jobs::v1::JobService::Stub> jobs_;
  fs::path scratch_;
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
  const fs::path clone = scratch_ / "clone";
  Shell cloned = Sh(absl::StrCat(Git(alice), " clone -q ", Quote(url), " ", clone.string()));
  ASSERT_EQ(cloned.code, 0) << cloned.output;
  Shell head = Sh(absl::StrCat("git -C ", clone.string(), " rev-parse HEAD"));
  EXPECT_EQ(head.output, sha + "\n");
  Shell log = Sh(absl::StrCat("git -C ", clone.string(), " log --format=%s"));
  EXPECT_THAT(log.output, HasSubstr("from template " + template_id + " v"));
  EXPECT_EQ(Sh(absl::StrCat("git -C ", clone.string(), " rev-list --count HEAD")).output, "1\n");
  const std::string record = Read(clone / ".orchestrator-answers.json");
  EXPECT_THAT(record, HasSubstr("\"_template\": \"" + template_id + "\""));
  EXPECT_THAT(record, ::testing::Not(HasSubstr("sk-very-secret-1")));
  EXPECT_EQ(Sh(absl::StrCat("grep -r sk-very-secret-1 ", clone.string())).code, 1);

  // Its tests pass, its image builds, the container answers its health path.
  Shell check = Sh(absl::StrCat("bash ", PROJECT_SOURCE_DIR, "/tests/support/check_project.sh ",
                                clone.string()));
  EXPECT_EQ(check.code, 0) << check.output;
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
  Shell bob_clone =
      Sh(absl::StrCat(Git(bob), " clone -q ", Quote(url), " ", (scratch_ / "bob").string()));
  EXPECT_NE(bob_clone.code, 0);
  EXPECT_FALSE(fs::exists(scratch_ / "bob" / ".orchestrator-answers.json"));
  Shell anonymous = Sh(absl::StrCat(
      "env -i PATH=/usr/bin:/bin HOME=/nonexistent GIT_TERMINAL_PROMPT=0 git clone -q ", Quote(url),
      " ", (scratch_ / "anon").string()));
  EXPECT_NE(anonymous.code, 0);

  // Alice pushes; Bob's push to the same repository is refused.
  const fs::path mine = scratch_ / "alice";
  ASSERT_EQ(Sh(absl::StrCat(Git(alice), " clone -q ", Quote(url), " ", mine.string())).code, 0);
  std::ofstream(mine / "NEWS") << "hello\n";
  ASSERT_EQ(Sh(absl::StrCat("cd ", mine.string(),
                            " && git add NEWS && git -c user.name=a -c user.email=a@b "
                            "commit -qm news"))
                .code,
            0);
  Shell bob_push = Sh(absl::StrCat("cd ", mine.string(), " && ", Git(bob), " push -q origin HEAD"));
  EXPECT_NE(bob_push.code, 0) << bob_push.output;
  Shell alice_push =
      Sh(absl::StrCat("cd ", mine.string(), " && ", Git(alice), " push -q origin HEAD"));
  EXPECT_EQ(alice_push.code, 0) << alice_push.output;

  // A worker's agent token for shop reaches shop's repository, not blog's.
  std::ifstream credential_file(mesh_.config().mesh_credential_file);
  std::string credential;
  std::getline(credential_file, credential);
  auto admin = admin::v1::AdminService::NewStub(mesh_.channel());
  admin::v1::MintWorkerTokenRequest mint;
  mint.set_user_id(alice_id);
  mint.set_worker_id("wrk_test");
  mint.set_project_id(shop);
  admin::v1::MintWorkerTokenResponse minted;
  grpc::Status s = admin->MintWorkerToken(TestMesh::Context(credential).get(), mint, &minted);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const std::string agent = minted.value();
  EXPECT_EQ(Sh(absl::StrCat(Git(agent), " ls-remote ", Quote(urls[shop]))).code, 0);
  EXPECT_NE(Sh(absl::StrCat(Git(agent), " ls-remote ", Quote(urls[blog]))).code, 0);
}

}  // namespace
}  // namespace orchestrator
