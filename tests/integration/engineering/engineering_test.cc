// EngineeringService in the whole mesh: a scaffolded python-http project on
// the local git host, a developer worker in a real bubblewrap sandbox with
// the scripted agent (no model key), the project's real tests run by the
// platform, and the change pushed and checked from a fresh clone.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "orchestrator/engineering/v1/engineering.grpc.pb.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "orchestrator/scaffolder/v1/scaffolder.grpc.pb.h"
#include "orchestrator/sessions/v1/sessions.grpc.pb.h"
#include "services/common/process/child_process.h"
#include "tests/support/job_wait.h"
#include "tests/support/run_git.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_mesh.h"

namespace orchestrator::engineering {
namespace {

using testing::GitRun;
using testing::TempDir;
using testing::TestMesh;

// git as a user runs it, authenticating with an orchestrator `token`.
GitRun GitAs(const std::string& token, const std::vector<std::string>& args,
             const std::string& cwd = "/") {
  return testing::RunGit(args, cwd, {}, {{"http.extraHeader", "Authorization: Bearer " + token}});
}

// A task for the scripted agent: its steps, one list per attempt.
std::string Steps(const std::string& json) {
  return absl::StrCat("Do as the steps say.\n\n```orchestrator-steps\n", json, "\n```\n");
}

// The python-http template's tests, as a user runs them in a checkout.
struct TestRun {
  int exit_code = -1;
  std::string output;
};
TestRun RunTemplateTests(const std::string& dir) {
  ChildCommand command;
  command.argv = {"python3", "-m", "unittest", "discover", "-s", "tests", "-v"};
  command.cwd = dir;
  command.deadline = absl::Now() + absl::Minutes(2);
  command.stderr_bytes = 1 << 20;
  TestRun run;
  command.on_output = [&run](absl::string_view b) { run.output.append(b.data(), b.size()); };
  auto exit = RunChild(command);
  if (exit.ok()) {
    run.exit_code = exit->exit_code;
    run.output += exit->stderr_tail;
  }
  return run;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

constexpr char kAddVersionRoute[] = R"json({"steps": [
  {"replace": "repo/app.py", "old": "        elif path == \"/api/hello\":",
   "new": "        elif path == \"/api/version\":\n            status, body, kind = HTTPStatus.OK, b'{\"version\": 2}', \"application/json\"\n        elif path == \"/api/hello\":"},
  {"write": "repo/tests/test_version.py", "content": "import json\nimport unittest\n\nfrom test_app import ServiceTest\n\n\nclass VersionTest(ServiceTest):\n    def test_version(self):\n        status, _, body = self.get(\"/api/version\")\n        self.assertEqual((status, json.loads(body)), (200, {\"version\": 2}))\n"},
  {"usage": {"input_tokens": 1200, "output_tokens": 300, "cost_usd_micros": 4500}},
  {"say": "Add GET /api/version\n\nIt answers the API's version as JSON, with a test."}
]})json";

// Attempt 1 breaks /healthz (a test fails); attempt 2 puts it back and
// changes the greeting.
constexpr char kFailThenFix[] = R"json({"attempts": [
  [{"replace": "repo/app.py", "old": "b\"ok\\n\"", "new": "b\"fine\\n\""},
   {"usage": {"input_tokens": 100, "output_tokens": 10, "cost_usd_micros": 1}},
   {"say": "Say fine on /healthz"}],
  [{"replace": "repo/app.py", "old": "b\"fine\\n\"", "new": "b\"ok\\n\""},
   {"replace": "repo/app.py", "old": "GREETING = \"", "new": "GREETING = \"Howdy! "},
   {"usage": {"input_tokens": 200, "output_tokens": 20, "cost_usd_micros": 2}},
   {"say": "Greet with Howdy"}]
]})json";

// Every attempt breaks /healthz.
constexpr char kNeverPasses[] = R"json({"attempts": [
  [{"replace": "repo/app.py", "old": "b\"ok\\n\"", "new": "b\"broken\\n\""},
   {"say": "Break healthz"}],
  [{"write": "repo/NOTES.md", "content": "still trying\n"}, {"say": "Still broken"}]
]})json";

class EngineeringTest : public ::testing::Test {
 protected:
  explicit EngineeringTest(std::function<void(MeshConfig&)> tweak = nullptr)
      : mesh_("all",
              [tweak](MeshConfig& c) {
                c.engineering_test_timeout = std::chrono::minutes(2);
                c.engineering_task_timeout = std::chrono::minutes(2);
                if (tweak) tweak(c);
              }),
        engineering_(v1::EngineeringService::NewStub(mesh_.channel())),
        jobs_(jobs::v1::JobService::NewStub(mesh_.channel())),
        projects_(projects::v1::ProjectService::NewStub(mesh_.channel())),
        scaffolder_(scaffolder::v1::ScaffolderService::NewStub(mesh_.channel())) {
    std::tie(user_id_, token_) = mesh_.NewUser("alice");
  }

  std::string Project(const std::string& name, bool scaffold = true) {
    projects::v1::CreateProjectRequest create;
    create.mutable_project()->set_name(name);
    projects::v1::CreateProjectResponse created;
    EXPECT_TRUE(projects_->CreateProject(TestMesh::Context(token_).get(), create, &created).ok());
    const std::string id = created.project().id();
    if (!scaffold) return id;
    scaffolder::v1::ScaffoldRequest req;
    req.set_project_id(id);
    req.set_template_id("python-http");
    scaffolder::v1::ScaffoldResponse resp;
    grpc::Status s = scaffolder_->Scaffold(TestMesh::Context(token_).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(Wait(resp.job().id()).state(), jobs::v1::JOB_STATE_SUCCEEDED);
    return id;
  }

  std::string RepositoryOf(const std::string& project_id) {
    projects::v1::GetProjectRequest req;
    req.set_project_id(project_id);
    projects::v1::GetProjectResponse resp;
    EXPECT_TRUE(projects_->GetProject(TestMesh::Context(token_).get(), req, &resp).ok());
    return resp.project().repository_url();
  }

  jobs::v1::Job Wait(const std::string& job_id) {
    return testing::WaitForJob(*jobs_, token_, job_id, std::chrono::seconds(240));
  }

  grpc::Status Trigger(const std::string& project_id, const std::string& task,
                       v1::TriggerEngineeringResponse* resp, int max_iterations = 0,
                       const std::string& request_id = "", const std::string& token = "") {
    v1::TriggerEngineeringRequest req;
    req.set_project_id(project_id);
    req.set_instructions(task);
    req.set_max_iterations(max_iterations);
    req.set_request_id(request_id);
    return engineering_->TriggerEngineering(TestMesh::Context(token.empty() ? token_ : token).get(),
                                            req, resp);
  }

  // Triggers and waits for the run's end.
  v1::EngineeringRun RunToEnd(const std::string& project_id, const std::string& task,
                              int max_iterations = 0, jobs::v1::Job* job = nullptr) {
    v1::TriggerEngineeringResponse triggered;
    grpc::Status s = Trigger(project_id, task, &triggered, max_iterations);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(triggered.run().status(), v1::ENGINEERING_RUN_STATUS_QUEUED);
    jobs::v1::Job ended = Wait(triggered.job().id());
    if (job != nullptr) *job = ended;
    return GetRun(triggered.run().id());
  }

  v1::EngineeringRun GetRun(const std::string& run_id) {
    v1::GetEngineeringRunRequest req;
    req.set_run_id(run_id);
    v1::GetEngineeringRunResponse resp;
    grpc::Status s = engineering_->GetEngineeringRun(TestMesh::Context(token_).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.run();
  }

  // The job's log lines, for a failure's message.
  std::string LogOf(const std::string& job_id) {
    jobs::v1::ListJobEventsRequest req;
    req.set_job_id(job_id);
    req.set_page_size(1000);
    jobs::v1::ListJobEventsResponse resp;
    (void)jobs_->ListJobEvents(TestMesh::Context(token_).get(), req, &resp);
    std::string out;
    for (const auto& e : resp.events()) {
      if (e.has_log_line()) absl::StrAppend(&out, e.log_line().text(), "\n");
      if (e.has_progress()) absl::StrAppend(&out, "[", e.progress().message(), "]\n");
    }
    return out;
  }

  // A fresh clone of the project's repository at `ref`.
  std::string FreshClone(const std::string& project_id, const std::string& ref = "") {
    const std::string dir = scratch_.Path(absl::StrCat("clone-", ++clones_));
    GitRun cloned = GitAs(token_, {"clone", "-q", RepositoryOf(project_id), dir});
    EXPECT_EQ(cloned.exit_code, 0) << cloned.err;
    if (!ref.empty()) {
      GitRun checked = GitAs(token_, {"checkout", "-q", ref}, dir);
      EXPECT_EQ(checked.exit_code, 0) << checked.err;
    }
    return dir;
  }

  std::string RemoteRef(const std::string& project_id, const std::string& ref) {
    GitRun r = GitAs(token_, {"ls-remote", RepositoryOf(project_id), ref});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.substr(0, r.out.find('\t'));
  }

  TestMesh mesh_;
  std::unique_ptr<v1::EngineeringService::Stub> engineering_;
  std::unique_ptr<jobs::v1::JobService::Stub> jobs_;
  std::unique_ptr<projects::v1::ProjectService::Stub> projects_;
  std::unique_ptr<scaffolder::v1::ScaffolderService::Stub> scaffolder_;
  std::string user_id_;
  std::string token_;
  TempDir scratch_;
  int clones_ = 0;
};

TEST_F(EngineeringTest, AChangeWhoseTestsPassIsPushedAndVerifiedFromAFreshClone) {
  const std::string project = Project("shop");
  const std::string before = RemoteRef(project, "refs/heads/main");
  jobs::v1::Job job;
  v1::EngineeringRun run = RunToEnd(project, Steps(kAddVersionRoute), 0, &job);
  ASSERT_EQ(job.state(), jobs::v1::JOB_STATE_SUCCEEDED) << job.error().message() << "\n"
                                                        << LogOf(job.id());
  ASSERT_EQ(run.status(), v1::ENGINEERING_RUN_STATUS_SUCCEEDED);
  EXPECT_EQ(run.iterations(), 1);
  EXPECT_EQ(run.max_iterations(), 3);
  const v1::Change& change = run.change();
  EXPECT_EQ(change.branch(), "main");
  EXPECT_EQ(change.base_commit_sha(), before);
  EXPECT_EQ(run.branch(), absl::StrCat("orchestrator/", run.id()));
  // Both refs on the remote point at the reported commit.
  EXPECT_EQ(RemoteRef(project, "refs/heads/main"), change.commit_sha());
  EXPECT_EQ(RemoteRef(project, absl::StrCat("refs/heads/", run.branch())), change.commit_sha());
  // The tests the platform ran, with their counts.
  EXPECT_EQ(change.test_report().outcome(), v1::TEST_OUTCOME_PASSED);
  EXPECT_GE(change.test_report().passed_count(), 10);
  EXPECT_EQ(change.test_report().failed_count(), 0);
  EXPECT_THAT(change.test_report().command(), ::testing::HasSubstr("unittest"));
  // What changed, file by file.
  std::map<std::string, v1::FileChange> files;
  for (const auto& f : change.files()) files[f.path()] = f;
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files["app.py"].change_type(), v1::FILE_CHANGE_TYPE_MODIFIED);
  EXPECT_EQ(files["app.py"].additions(), 2);
  EXPECT_EQ(files["tests/test_version.py"].change_type(), v1::FILE_CHANGE_TYPE_ADDED);
  // A user's fresh clone has the change, and its tests pass there too.
  const std::string clone = FreshClone(project);
  EXPECT_THAT(ReadFile(clone + "/app.py"), ::testing::HasSubstr("/api/version"));
  TestRun tests = RunTemplateTests(clone);
  EXPECT_EQ(tests.exit_code, 0) << tests.output;
  EXPECT_THAT(tests.output, ::testing::HasSubstr("test_version"));
  // One commit on top of the base: the agent's summary, tied to its run.
  GitRun log = GitAs(token_, {"log", "--format=%an%n%B", "-1", "HEAD"}, clone);
  EXPECT_THAT(log.out, ::testing::HasSubstr("Add GET /api/version"));
  EXPECT_THAT(log.out, ::testing::HasSubstr(absl::StrCat("Orchestrator-Run: ", run.id())));
  EXPECT_THAT(log.out, ::testing::HasSubstr("scripted agent for"));
  EXPECT_EQ(GitAs(token_, {"rev-parse", "HEAD~1"}, clone).out.substr(0, 40), before);
  // The agent's files stay out of the commit (its CLAUDE.md/AGENTS.md).
  EXPECT_FALSE(std::filesystem::exists(clone + "/AGENTS.md"));
  // Usage declared by the agent.
  EXPECT_EQ(run.usage().input_tokens(), 1200);
  EXPECT_EQ(run.usage().output_tokens(), 300);
  EXPECT_EQ(run.usage().cost_usd_micros(), 4500);
  // The stages, as job events.
  const std::string events = LogOf(job.id());
  for (const char* stage : {"preparing", "implementing", "testing", "pushing"}) {
    EXPECT_THAT(events, ::testing::HasSubstr(absl::StrCat("[", stage))) << events;
  }
  EXPECT_THAT(events, ::testing::HasSubstr("agent tool Edit")) << events;
  // The latest change of the project.
  v1::GetLatestChangeRequest latest;
  latest.set_project_id(project);
  v1::GetLatestChangeResponse got;
  ASSERT_TRUE(engineering_->GetLatestChange(TestMesh::Context(token_).get(), latest, &got).ok());
  EXPECT_EQ(got.change().commit_sha(), change.commit_sha());
}

TEST_F(EngineeringTest, FailingTestsGoBackToTheAgentAndTheSecondAttemptLands) {
  const std::string project = Project("retry");
  jobs::v1::Job job;
  v1::EngineeringRun run = RunToEnd(project, Steps(kFailThenFix), 0, &job);
  ASSERT_EQ(job.state(), jobs::v1::JOB_STATE_SUCCEEDED) << job.error().message() << "\n"
                                                        << LogOf(job.id());
  EXPECT_EQ(run.iterations(), 2);
  ASSERT_EQ(run.iteration_history_size(), 2);
  const v1::TestReport& first = run.iteration_history(0).test_report();
  EXPECT_EQ(first.outcome(), v1::TEST_OUTCOME_FAILED);
  EXPECT_EQ(first.failed_count(), 1);
  EXPECT_THAT(first.output_tail(), ::testing::HasSubstr("test_healthz_answers_ok"));
  EXPECT_EQ(run.iteration_history(1).test_report().outcome(), v1::TEST_OUTCOME_PASSED);
  // Usage summed over both turns.
  EXPECT_EQ(run.usage().input_tokens(), 300);
  EXPECT_EQ(run.usage().output_tokens(), 30);
  const std::string clone = FreshClone(project);
  EXPECT_EQ(GitAs(token_, {"rev-parse", "HEAD"}, clone).out.substr(0, 40),
            run.change().commit_sha());
  const std::string app = ReadFile(clone + "/app.py");
  EXPECT_THAT(app, ::testing::HasSubstr("Howdy!"));
  EXPECT_THAT(app, ::testing::HasSubstr("b\"ok\\n\""));
  EXPECT_EQ(RunTemplateTests(clone).exit_code, 0);
}

TEST_F(EngineeringTest, ARunThatNeverPassesAsksForAHumanWithItsAttemptOnItsBranch) {
  const std::string project = Project("stuck");
  const std::string main_before = RemoteRef(project, "refs/heads/main");
  // Alice has no session open: she hears of it as a notification.
  auto sessions = sessions::v1::SessionService::NewStub(mesh_.channel());
  grpc::ClientContext watch;
  watch.AddMetadata("authorization", "Bearer " + token_);
  watch.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(120)));
  auto notifications =
      sessions->WatchNotifications(&watch, sessions::v1::WatchNotificationsRequest());
  jobs::v1::Job job;
  v1::EngineeringRun run = RunToEnd(project, Steps(kNeverPasses), 2, &job);
  ASSERT_EQ(job.state(), jobs::v1::JOB_STATE_FAILED) << LogOf(job.id());
  EXPECT_EQ(job.error().code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(job.error().message(), ::testing::StartsWith("needs a human"));
  EXPECT_THAT(job.error().message(), ::testing::HasSubstr("test_healthz_answers_ok"));
  EXPECT_EQ(run.status(), v1::ENGINEERING_RUN_STATUS_FAILED);
  EXPECT_EQ(run.iterations(), 2);
  // main is untouched; the attempt is on the run's branch for inspection.
  EXPECT_EQ(RemoteRef(project, "refs/heads/main"), main_before);
  ASSERT_EQ(run.branch(), absl::StrCat("orchestrator/", run.id()));
  const std::string attempt = RemoteRef(project, absl::StrCat("refs/heads/", run.branch()));
  ASSERT_FALSE(attempt.empty());
  const std::string clone = FreshClone(project, attempt);
  EXPECT_THAT(ReadFile(clone + "/app.py"), ::testing::HasSubstr("broken"));
  EXPECT_EQ(ReadFile(clone + "/NOTES.md"), "still trying\n");
  GitRun subject = GitAs(token_, {"log", "--format=%s", "-1", "HEAD"}, clone);
  EXPECT_THAT(subject.out, ::testing::StartsWith("WIP (tests failing)"));
  sessions::v1::WatchNotificationsResponse n;
  ASSERT_TRUE(notifications->Read(&n)) << "no notification of the run asking for a human";
  EXPECT_EQ(n.notification().job_id(), job.id());
  EXPECT_THAT(n.notification().text(), ::testing::HasSubstr("needs a human"));
  watch.TryCancel();
  notifications->Finish();
}

TEST_F(EngineeringTest, AnAgentTurnThatFailsIsRetriedWithItsReason) {
  const std::string project = Project("flaky");
  // Attempt 1's replace finds nothing (the step fails, so the turn does).
  jobs::v1::Job job;
  v1::EngineeringRun run = RunToEnd(project, Steps(R"json({"attempts": [
    [{"replace": "repo/app.py", "old": "no such text", "new": "x"}],
    [{"replace": "repo/app.py", "old": "GREETING = \"", "new": "GREETING = \"Hi! "},
     {"say": "Greet with Hi"}]]})json"),
                                    0, &job);
  ASSERT_EQ(job.state(), jobs::v1::JOB_STATE_SUCCEEDED) << LogOf(job.id());
  ASSERT_EQ(run.iteration_history_size(), 2);
  EXPECT_NE(run.iteration_history(0).task_status(), agents::v1::TASK_STATUS_SUCCEEDED);
  EXPECT_THAT(run.iteration_history(0).summary(), ::testing::HasSubstr("the agent's turn ended"));
  EXPECT_FALSE(run.iteration_history(0).has_test_report());
  EXPECT_EQ(run.iteration_history(1).test_report().outcome(), v1::TEST_OUTCOME_PASSED);
}

TEST_F(EngineeringTest, AChangeToADefaultBranchThatMovedIsReappliedAndTestedAgain) {
  const std::string project = Project("busy");
  v1::TriggerEngineeringResponse triggered;
  ASSERT_TRUE(Trigger(project, Steps(R"json({"steps": [
    {"run": "sleep 4"},
    {"replace": "repo/app.py", "old": "GREETING = \"", "new": "GREETING = \"Hey! "},
    {"say": "Greet with Hey"}]})json"),
                      &triggered)
                  .ok());
  // Someone pushes to main while the agent works.
  for (int i = 0; i < 600; ++i) {
    if (GetRun(triggered.run().id()).status() == v1::ENGINEERING_RUN_STATUS_IMPLEMENTING) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  const std::string dir = scratch_.Path("pusher");
  ASSERT_EQ(GitAs(token_, {"clone", "-q", RepositoryOf(project), dir}).exit_code, 0);
  std::ofstream(dir + "/CHANGELOG.md") << "a change by a person\n";
  ASSERT_EQ(GitAs(token_, {"add", "CHANGELOG.md"}, dir).exit_code, 0);
  ASSERT_EQ(GitAs(token_, {"commit", "-qm", "A person's change"}, dir).exit_code, 0);
  GitRun pushed = GitAs(token_, {"push", "-q", "origin", "main"}, dir);
  ASSERT_EQ(pushed.exit_code, 0) << pushed.err;

  jobs::v1::Job job = Wait(triggered.job().id());
  ASSERT_EQ(job.state(), jobs::v1::JOB_STATE_SUCCEEDED) << LogOf(job.id());
  v1::EngineeringRun run = GetRun(triggered.run().id());
  EXPECT_THAT(LogOf(job.id()), ::testing::HasSubstr("moved meanwhile"));
  const std::string clone = FreshClone(project);
  EXPECT_EQ(GitAs(token_, {"rev-parse", "HEAD"}, clone).out.substr(0, 40),
            run.change().commit_sha());
  EXPECT_THAT(ReadFile(clone + "/app.py"), ::testing::HasSubstr("Hey!"));
  EXPECT_EQ(ReadFile(clone + "/CHANGELOG.md"), "a change by a person\n");
  GitRun parent = GitAs(token_, {"log", "--format=%s", "-1", "HEAD~1"}, clone);
  EXPECT_THAT(parent.out, ::testing::HasSubstr("A person's change"));
  EXPECT_EQ(run.change().base_commit_sha(),
            GitAs(token_, {"rev-parse", "HEAD~1"}, clone).out.substr(0, 40));
  EXPECT_EQ(RunTemplateTests(clone).exit_code, 0);
}

TEST_F(EngineeringTest, BadRequestsAreRefusedWithWhatToFix) {
  const std::string project = Project("checks");
  v1::TriggerEngineeringResponse resp;
  grpc::Status s = Trigger(project, "  \n", &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("instructions"));
  s = Trigger(project, "do it", &resp, 11);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("max_iterations"));
  s = Trigger("", "do it", &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // A project without a repository.
  const std::string bare = Project("bare", /*scaffold=*/false);
  s = Trigger(bare, "do it", &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("no repository"));
  // Another user's project and run are not there for them.
  auto [bob, bob_token] = mesh_.NewUser("bob");
  s = Trigger(project, "do it", &resp, 0, "", bob_token);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  v1::GetEngineeringRunRequest get;
  get.set_run_id("eng_nosuchrun");
  v1::GetEngineeringRunResponse got;
  EXPECT_EQ(
      engineering_->GetEngineeringRun(TestMesh::Context(token_).get(), get, &got).error_code(),
      grpc::StatusCode::NOT_FOUND);
  // No change yet.
  v1::GetLatestChangeRequest latest;
  latest.set_project_id(project);
  v1::GetLatestChangeResponse change;
  EXPECT_EQ(
      engineering_->GetLatestChange(TestMesh::Context(token_).get(), latest, &change).error_code(),
      grpc::StatusCode::NOT_FOUND);
}

TEST_F(EngineeringTest, ARetriedTriggerIsTheSameRunAndRunsAreListedNewestFirst) {
  const std::string project = Project("again");
  v1::TriggerEngineeringResponse first, second;
  const std::string task = Steps(R"json({"steps": [
    {"replace": "repo/app.py", "old": "GREETING = \"", "new": "GREETING = \"Yo! "}]})json");
  ASSERT_TRUE(Trigger(project, task, &first, 0, "req-1").ok());
  ASSERT_TRUE(Trigger(project, task, &second, 0, "req-1").ok());
  EXPECT_EQ(first.job().id(), second.job().id());
  EXPECT_EQ(first.run().id(), second.run().id());
  EXPECT_EQ(Wait(first.job().id()).state(), jobs::v1::JOB_STATE_SUCCEEDED)
      << LogOf(first.job().id());
  v1::TriggerEngineeringResponse other;
  ASSERT_TRUE(Trigger(project, task, &other, 0, "req-2").ok());
  Wait(other.job().id());
  v1::ListEngineeringRunsRequest list;
  list.set_project_id(project);
  list.set_page_size(1);
  v1::ListEngineeringRunsResponse page;
  ASSERT_TRUE(engineering_->ListEngineeringRuns(TestMesh::Context(token_).get(), list, &page).ok());
  ASSERT_EQ(page.runs_size(), 1);
  EXPECT_EQ(page.runs(0).id(), other.run().id());
  ASSERT_FALSE(page.next_page_token().empty());
  list.set_page_token(page.next_page_token());
  ASSERT_TRUE(engineering_->ListEngineeringRuns(TestMesh::Context(token_).get(), list, &page).ok());
  ASSERT_EQ(page.runs_size(), 1);
  EXPECT_EQ(page.runs(0).id(), first.run().id());
  EXPECT_TRUE(page.next_page_token().empty());
}

class EngineeringTimeoutTest : public EngineeringTest {
 protected:
  EngineeringTimeoutTest()
      : EngineeringTest(
            [](MeshConfig& c) { c.engineering_task_timeout = std::chrono::seconds(3); }) {}
};

TEST_F(EngineeringTimeoutTest, ATurnPastItsTimeoutFailsThatIterationAndTheNextGoesOn) {
  const std::string project = Project("slow");
  jobs::v1::Job job;
  v1::EngineeringRun run = RunToEnd(project, Steps(R"json({"attempts": [
    [{"run": "sleep 60"}],
    [{"replace": "repo/app.py", "old": "GREETING = \"", "new": "GREETING = \"Late! "},
     {"say": "Greet late"}]]})json"),
                                    0, &job);
  ASSERT_EQ(job.state(), jobs::v1::JOB_STATE_SUCCEEDED) << LogOf(job.id());
  ASSERT_EQ(run.iteration_history_size(), 2);
  EXPECT_EQ(run.iteration_history(0).task_status(), agents::v1::TASK_STATUS_TIMEOUT);
  EXPECT_THAT(run.iteration_history(0).summary(), ::testing::HasSubstr("TIMEOUT"));
  EXPECT_EQ(run.iteration_history(1).test_report().outcome(), v1::TEST_OUTCOME_PASSED);
}

class EngineeringBudgetTest : public EngineeringTest {
 protected:
  EngineeringBudgetTest()
      : EngineeringTest([](MeshConfig& c) { c.engineering_token_budget = 1000; }) {}
};

TEST_F(EngineeringBudgetTest, UsageIsSummedAndARunOverBudgetIsRefused) {
  const std::string project = Project("budget");
  const std::string task = Steps(R"json({"steps": [
    {"replace": "repo/app.py", "old": "GREETING = \"", "new": "GREETING = \"A "},
    {"usage": {"input_tokens": 500, "output_tokens": 100, "cost_usd_micros": 700}}]})json");
  jobs::v1::Job job;
  RunToEnd(project, task, 0, &job);
  ASSERT_EQ(job.state(), jobs::v1::JOB_STATE_SUCCEEDED) << LogOf(job.id());
  RunToEnd(project, task, 0, &job);  // 1200 tokens now: over the budget of 1000
  ASSERT_EQ(job.state(), jobs::v1::JOB_STATE_SUCCEEDED) << LogOf(job.id());
  v1::GetEngineeringUsageRequest req;
  req.set_project_id(project);
  v1::GetEngineeringUsageResponse usage;
  ASSERT_TRUE(engineering_->GetEngineeringUsage(TestMesh::Context(token_).get(), req, &usage).ok());
  EXPECT_EQ(usage.usage().input_tokens(), 1000);
  EXPECT_EQ(usage.usage().output_tokens(), 200);
  EXPECT_EQ(usage.usage().cost_usd_micros(), 1400);
  EXPECT_EQ(usage.run_count(), 2);
  EXPECT_EQ(usage.budget_tokens(), 1000);
  EXPECT_EQ(usage.window_tokens(), 1200);
  v1::TriggerEngineeringResponse refused;
  grpc::Status s = Trigger(project, task, &refused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("token budget"));
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("1200"));
  // Another user's budget is their own.
  auto [bob, bob_token] = mesh_.NewUser("bob");
  v1::GetEngineeringUsageRequest mine;
  v1::GetEngineeringUsageResponse theirs;
  ASSERT_TRUE(
      engineering_->GetEngineeringUsage(TestMesh::Context(bob_token).get(), mine, &theirs).ok());
  EXPECT_EQ(theirs.window_tokens(), 0);
}

}  // namespace
}  // namespace orchestrator::engineering
