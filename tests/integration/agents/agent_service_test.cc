// The agent spawner in a whole mesh on a real PostgreSQL, with real
// bubblewrap sandboxes and orchestrator-runner inside running the scripted
// agent, which acts through the real orchestrator CLI with its worker token.
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/agents/v1/agents.grpc.pb.h"
#include "orchestrator/agents/v1/runner.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "tests/support/log_capture.h"
#include "tests/support/test_mesh.h"
#include "tests/support/worker_calls.h"

namespace orchestrator::agents {
namespace {

namespace v1 = ::orchestrator::agents::v1;
using ::testing::HasSubstr;
using testing::TaskRun;
using testing::TestMesh;

class AgentServiceTest : public ::testing::Test {
 protected:
  explicit AgentServiceTest(const std::function<void(MeshConfig&)>& tweak = nullptr)
      : mesh_("all", tweak), stub_(v1::AgentService::NewStub(mesh_.channel())) {
    std::tie(alice_id_, alice_) = mesh_.NewUser("alice");
    std::tie(bob_id_, bob_) = mesh_.NewUser("bob");
  }

  v1::Worker Start(const std::vector<std::string>& allowed,
                   v1::AgentType agent = v1::AGENT_TYPE_SCRIPTED,
                   const std::map<std::string, std::string>& env = {}) {
    v1::StartWorkerRequest req;
    req.mutable_config()->set_worker_type(v1::WORKER_TYPE_PO);
    req.mutable_config()->set_agent_type(agent);
    for (const auto& [k, v] : env) (*req.mutable_config()->mutable_environment())[k] = v;
    for (const auto& a : allowed) req.mutable_config()->add_allowed_commands(a);
    v1::StartWorkerResponse resp;
    grpc::Status s = stub_->StartWorker(TestMesh::Context(alice_).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.worker();
  }

  // Watches until the worker reaches `state` (or ends); returns what it saw last.
  v1::Worker WaitFor(const std::string& id, v1::WorkerState state, absl::Duration timeout) {
    return testing::WaitForWorker(*stub_, alice_, id, state, timeout);
  }

  TaskRun Run(const std::string& worker_id, const std::string& prompt,
              absl::Duration timeout = absl::ZeroDuration(), const std::string& session = "") {
    return testing::RunTaskOn(*stub_, alice_, worker_id, prompt, timeout, session);
  }

  static std::string Commands(const TaskRun& run) {
    std::string out;
    for (const auto& e : run.events) {
      if (e.has_tool_call())
        out += e.tool_call().input().fields().at("command").string_value() + "\n";
    }
    return out;
  }

  TestMesh mesh_;
  std::unique_ptr<v1::AgentService::Stub> stub_;
  std::string alice_id_, alice_, bob_id_, bob_;
};

TEST_F(AgentServiceTest, AScriptedAgentInItsSandboxCreatesAProjectThroughTheCli) {
  v1::Worker w = Start({"project.*"});
  EXPECT_EQ(w.state(), v1::WORKER_STATE_STARTING);
  EXPECT_EQ(w.owner_id(), alice_id_);
  ASSERT_EQ(WaitFor(w.id(), v1::WORKER_STATE_READY, absl::Seconds(20)).state(),
            v1::WORKER_STATE_READY);

  TaskRun run = Run(w.id(), "Please create a project named shop");
  ASSERT_TRUE(run.status.ok()) << run.status.error_message();
  EXPECT_EQ(run.result.status(), v1::TASK_STATUS_SUCCEEDED)
      << run.result.summary() << run.result.stderr_tail();
  EXPECT_THAT(Commands(run), HasSubstr("orchestrator project create shop --json"));
  EXPECT_THAT(run.result.summary(), HasSubstr("Created project shop (prj_"));
  ASSERT_FALSE(run.events.empty());
  EXPECT_TRUE(run.events.front().has_session_started());
  for (size_t i = 0; i < run.events.size(); ++i)
    EXPECT_EQ(run.events[i].sequence(), int64_t(i + 1));

  // The project is alice's, made by her worker's token.
  auto projects = orchestrator::projects::v1::ProjectService::NewStub(mesh_.channel());
  orchestrator::projects::v1::ListProjectsRequest list;
  orchestrator::projects::v1::ListProjectsResponse listed;
  ASSERT_TRUE(projects->ListProjects(TestMesh::Context(alice_).get(), list, &listed).ok());
  ASSERT_EQ(listed.projects_size(), 1);
  EXPECT_EQ(listed.projects(0).name(), "shop");

  // The worker is READY again and remembers the agent session.
  v1::GetWorkerRequest get;
  get.set_worker_id(w.id());
  v1::GetWorkerResponse got;
  ASSERT_TRUE(stub_->GetWorker(TestMesh::Context(alice_).get(), get, &got).ok());
  EXPECT_EQ(got.worker().state(), v1::WORKER_STATE_READY);
  EXPECT_EQ(got.worker().agent_session_id(), run.result.agent_session_id());
  // Its instructions are in the workspace, listing what it may run.
  v1::GetWorkerRequest other;
  other.set_worker_id(w.id());
  EXPECT_EQ(stub_->GetWorker(TestMesh::Context(bob_).get(), other, &got).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(AgentServiceTest, TheWorkspaceCarriesTheInstructionsAndTheAllowedCommandsOnly) {
  v1::StartWorkerRequest req;
  req.mutable_config()->set_worker_type(v1::WORKER_TYPE_DEVELOPER);
  req.mutable_config()->set_agent_type(v1::AGENT_TYPE_SCRIPTED);
  req.mutable_config()->set_instructions("Keep the tests green.");
  req.mutable_config()->add_allowed_commands("project.get");
  req.mutable_config()->add_allowed_commands("deploy.*");
  v1::StartWorkerResponse resp;
  ASSERT_TRUE(stub_->StartWorker(TestMesh::Context(alice_).get(), req, &resp).ok());
  ASSERT_EQ(WaitFor(resp.worker().id(), v1::WORKER_STATE_READY, absl::Seconds(20)).state(),
            v1::WORKER_STATE_READY);
  // The runner writes them right after its welcome.
  const std::string file = absl::StrCat(mesh_.config().agents_dir, "/workspaces/",
                                        resp.worker().workspace_id(), "/work/AGENTS.md");
  std::string text;
  for (int i = 0; i < 100 && text.find("END orchestrator commands") == std::string::npos; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
    std::ifstream in(file);
    std::stringstream s;
    s << in.rdbuf();
    text = s.str();
  }
  EXPECT_THAT(text, ::testing::StartsWith("Keep the tests green."));
  EXPECT_THAT(text, HasSubstr("orchestrator deploy trigger PROJECT"));
  EXPECT_THAT(text, HasSubstr("orchestrator project get PROJECT"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("orchestrator project create")));
}

TEST_F(AgentServiceTest, OnlyTheProjectSecretsGrantedByNameReachTheSandbox) {
  auto projects = orchestrator::projects::v1::ProjectService::NewStub(mesh_.channel());
  orchestrator::projects::v1::CreateProjectRequest create;
  create.mutable_project()->set_name("shop");
  orchestrator::projects::v1::CreateProjectResponse created;
  ASSERT_TRUE(projects->CreateProject(TestMesh::Context(alice_).get(), create, &created).ok());
  for (const char* name : {"DATABASE_URL", "STRIPE_KEY"}) {
    orchestrator::projects::v1::SetSecretRequest set;
    set.set_project_id(created.project().id());
    set.set_name(name);
    set.set_value("postgres://secret-value");
    orchestrator::projects::v1::SetSecretResponse done;
    ASSERT_TRUE(projects->SetSecret(TestMesh::Context(alice_).get(), set, &done).ok());
  }
  v1::StartWorkerRequest req;
  req.mutable_config()->set_worker_type(v1::WORKER_TYPE_DEVELOPER);
  req.mutable_config()->set_agent_type(v1::AGENT_TYPE_SCRIPTED);
  req.mutable_config()->set_project_id(created.project().id());
  req.mutable_config()->add_secret_names("DATABASE_URL");
  v1::StartWorkerResponse resp;
  ASSERT_TRUE(stub_->StartWorker(TestMesh::Context(alice_).get(), req, &resp).ok());
  ASSERT_EQ(WaitFor(resp.worker().id(), v1::WORKER_STATE_READY, absl::Seconds(20)).state(),
            v1::WORKER_STATE_READY);
  EXPECT_EQ(Run(resp.worker().id(), "is DATABASE_URL set").result.summary(),
            "DATABASE_URL is set (23 characters).");
  EXPECT_EQ(Run(resp.worker().id(), "is STRIPE_KEY set").result.summary(),
            "STRIPE_KEY is not set.");
  // The value is nowhere in the worker's record.
  v1::GetWorkerRequest get;
  get.set_worker_id(resp.worker().id());
  v1::GetWorkerResponse got;
  ASSERT_TRUE(stub_->GetWorker(TestMesh::Context(alice_).get(), get, &got).ok());
  EXPECT_THAT(got.worker().DebugString(), ::testing::Not(HasSubstr("secret-value")));

  // A secret of a project the caller cannot see, or one that does not exist.
  req.mutable_config()->set_secret_names(0, "MISSING");
  grpc::Status s = stub_->StartWorker(TestMesh::Context(alice_).get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("config.secret_names[0]"));
  req.mutable_config()->set_secret_names(0, "DATABASE_URL");
  s = stub_->StartWorker(TestMesh::Context(bob_).get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(AgentServiceTest, AWorkersTokenReachesOnlyTheProjectItWasStartedFor) {
  auto projects = orchestrator::projects::v1::ProjectService::NewStub(mesh_.channel());
  std::string ids[2];
  for (int i = 0; i < 2; ++i) {
    orchestrator::projects::v1::CreateProjectRequest create;
    create.mutable_project()->set_name(i == 0 ? "project-a" : "project-b");
    orchestrator::projects::v1::CreateProjectResponse created;
    ASSERT_TRUE(projects->CreateProject(TestMesh::Context(alice_).get(), create, &created).ok());
    ids[i] = created.project().id();
  }
  v1::StartWorkerRequest req;
  req.mutable_config()->set_worker_type(v1::WORKER_TYPE_DEVELOPER);
  req.mutable_config()->set_agent_type(v1::AGENT_TYPE_SCRIPTED);
  req.mutable_config()->set_project_id(ids[0]);
  req.mutable_config()->add_allowed_commands("project.*");
  v1::StartWorkerResponse resp;
  ASSERT_TRUE(stub_->StartWorker(TestMesh::Context(alice_).get(), req, &resp).ok());
  ASSERT_EQ(WaitFor(resp.worker().id(), v1::WORKER_STATE_READY, absl::Seconds(20)).state(),
            v1::WORKER_STATE_READY);

  // Through the CLI in its sandbox, with its own token: project A only.
  const std::string listed = Run(resp.worker().id(), "list my projects").result.summary();
  EXPECT_THAT(listed, HasSubstr("project-a"));
  EXPECT_THAT(listed, ::testing::Not(HasSubstr("project-b")));
  const std::string own =
      Run(resp.worker().id(), "run: orchestrator project get " + ids[0]).result.summary();
  EXPECT_THAT(own, ::testing::StartsWith("exit 0"));
  EXPECT_THAT(own, HasSubstr("project-a"));
  const std::string other =
      Run(resp.worker().id(), "run: orchestrator project get " + ids[1]).result.summary();
  EXPECT_THAT(other, ::testing::Not(::testing::StartsWith("exit 0")));
  EXPECT_THAT(other, HasSubstr("not found"));
  EXPECT_THAT(other, ::testing::Not(HasSubstr("project-b")));

  // Alice herself still sees both.
  orchestrator::projects::v1::ListProjectsRequest list;
  orchestrator::projects::v1::ListProjectsResponse all;
  ASSERT_TRUE(projects->ListProjects(TestMesh::Context(alice_).get(), list, &all).ok());
  EXPECT_EQ(all.projects_size(), 2);
}

TEST_F(AgentServiceTest, ACommandOutsideTheAllowedOnesIsRefusedByTheMesh) {
  v1::Worker w = Start({"project.get"});
  ASSERT_EQ(WaitFor(w.id(), v1::WORKER_STATE_READY, absl::Seconds(20)).state(),
            v1::WORKER_STATE_READY);
  TaskRun run = Run(w.id(), "create project forbidden");
  ASSERT_TRUE(run.status.ok()) << run.status.error_message();
  EXPECT_THAT(run.result.summary(), HasSubstr("missing permission 'project.create'"));
  bool refused = false;
  for (const auto& e : run.events) {
    if (e.has_tool_result() && e.tool_result().is_error()) refused = true;
  }
  EXPECT_TRUE(refused);
}

TEST_F(AgentServiceTest, ATaskPastItsTimeoutIsKilledAndTheWorkerStaysReady) {
  v1::Worker w = Start({});
  ASSERT_EQ(WaitFor(w.id(), v1::WORKER_STATE_READY, absl::Seconds(20)).state(),
            v1::WORKER_STATE_READY);
  const absl::Time start = absl::Now();
  TaskRun run = Run(w.id(), "wait 30 seconds", absl::Seconds(1));
  EXPECT_EQ(run.result.status(), v1::TASK_STATUS_TIMEOUT) << run.result.summary();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  TaskRun next = Run(w.id(), "what did i ask");
  EXPECT_EQ(next.result.status(), v1::TASK_STATUS_SUCCEEDED) << next.result.summary();
}

// The runner process of a worker, found by its environment.
pid_t RunnerOf(const std::string& worker_id) {
  DIR* proc = opendir("/proc");
  pid_t found = 0;
  while (dirent* e = readdir(proc)) {
    const int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::ifstream env(absl::StrCat("/proc/", pid, "/environ"));
    std::stringstream s;
    s << env.rdbuf();
    std::ifstream cmd(absl::StrCat("/proc/", pid, "/cmdline"));
    std::stringstream c;
    c << cmd.rdbuf();
    // The runner itself: no arguments (its scripted agent child has some).
    const std::string cmdline = c.str();
    if (absl::StrContains(s.str(), "ORCHESTRATOR_WORKER_ID=" + worker_id) &&
        absl::EndsWith(cmdline, std::string("orchestrator-runner") + '\0') &&
        cmdline.find('\0') == cmdline.size() - 1) {
      found = pid;
    }
  }
  closedir(proc);
  return found;
}

TEST_F(AgentServiceTest, AKilledRunnerFailsTheWorkerAndItsTaskWithinSeconds) {
  v1::Worker w = Start({});
  ASSERT_EQ(WaitFor(w.id(), v1::WORKER_STATE_READY, absl::Seconds(20)).state(),
            v1::WORKER_STATE_READY);
  TaskRun run;
  std::thread task([&] { run = Run(w.id(), "wait 60 seconds"); });
  ASSERT_EQ(WaitFor(w.id(), v1::WORKER_STATE_BUSY, absl::Seconds(10)).state(),
            v1::WORKER_STATE_BUSY);
  const pid_t runner = RunnerOf(w.id());
  ASSERT_GT(runner, 0);
  const absl::Time killed = absl::Now();
  kill(runner, SIGKILL);
  v1::Worker failed = WaitFor(w.id(), v1::WORKER_STATE_FAILED, absl::Seconds(10));
  EXPECT_EQ(failed.state(), v1::WORKER_STATE_FAILED);
  EXPECT_LT(absl::Now() - killed, absl::Seconds(5));
  EXPECT_THAT(failed.state_reason(), ::testing::AnyOf(HasSubstr("runner"), HasSubstr("sandbox")));
  task.join();
  EXPECT_EQ(run.result.status(), v1::TASK_STATUS_FAILED);
  EXPECT_FALSE(run.result.summary().empty());
}

TEST_F(AgentServiceTest, PauseFreezesAWorkerAndResumeBringsItBack) {
  v1::Worker w = Start({});
  ASSERT_EQ(WaitFor(w.id(), v1::WORKER_STATE_READY, absl::Seconds(20)).state(),
            v1::WORKER_STATE_READY);
  v1::PauseWorkerRequest pause;
  pause.set_worker_id(w.id());
  v1::PauseWorkerResponse paused;
  ASSERT_TRUE(stub_->PauseWorker(TestMesh::Context(alice_).get(), pause, &paused).ok());
  EXPECT_EQ(paused.worker().state(), v1::WORKER_STATE_PAUSED);
  TaskRun refused = Run(w.id(), "what did i ask");
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(refused.status.error_message(), HasSubstr("paused"));
  v1::ResumeWorkerRequest resume;
  resume.set_worker_id(w.id());
  v1::ResumeWorkerResponse resumed;
  ASSERT_TRUE(stub_->ResumeWorker(TestMesh::Context(alice_).get(), resume, &resumed).ok());
  EXPECT_EQ(resumed.worker().state(), v1::WORKER_STATE_READY);
  EXPECT_EQ(Run(w.id(), "what did i ask").result.status(), v1::TASK_STATUS_SUCCEEDED);

  v1::StopWorkerRequest stop;
  stop.set_worker_id(w.id());
  v1::StopWorkerResponse stopped;
  ASSERT_TRUE(stub_->StopWorker(TestMesh::Context(alice_).get(), stop, &stopped).ok());
  EXPECT_EQ(stopped.worker().state(), v1::WORKER_STATE_STOPPED);
  EXPECT_EQ(Run(w.id(), "hello").status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(AgentServiceTest, BadRequestsNameTheField) {
  v1::StartWorkerRequest req;
  v1::StartWorkerResponse resp;
  grpc::Status s = stub_->StartWorker(TestMesh::Context(alice_).get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("config.worker_type"));
  req.mutable_config()->set_worker_type(v1::WORKER_TYPE_DEVELOPER);
  req.mutable_config()->add_allowed_commands("Deploy!");
  s = stub_->StartWorker(TestMesh::Context(alice_).get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("config.allowed_commands[0]"));
  EXPECT_EQ(Run("wrk_missing", "hi").status.error_code(), grpc::StatusCode::NOT_FOUND);

  // A worker may name only a project its user can see: another owner's is
  // answered exactly like one that does not exist.
  auto projects = orchestrator::projects::v1::ProjectService::NewStub(mesh_.channel());
  orchestrator::projects::v1::CreateProjectRequest create;
  create.mutable_project()->set_name("bobs");
  orchestrator::projects::v1::CreateProjectResponse bobs;
  ASSERT_TRUE(projects->CreateProject(TestMesh::Context(bob_).get(), create, &bobs).ok());
  req.mutable_config()->clear_allowed_commands();
  for (const std::string& project : {bobs.project().id(), std::string("prj_missing")}) {
    req.mutable_config()->set_project_id(project);
    s = stub_->StartWorker(TestMesh::Context(alice_).get(), req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << project;
    EXPECT_THAT(s.error_message(), HasSubstr("project '" + project + "' not found"));
  }
}

// Connecting as a worker's runner with any token but that worker's answers
// exactly as for an id that does not exist: existence leaks nothing.
TEST_F(AgentServiceTest, ARunnerConnectWithAnotherTokenIsNotFoundLikeAnUnknownWorker) {
  v1::Worker w = Start({"project.get"});
  auto runner = v1::RunnerService::NewStub(mesh_.channel());
  auto connect = [&](const std::string& token, const std::string& worker_id) {
    auto ctx = TestMesh::Context(token);
    auto stream = runner->Connect(ctx.get());
    v1::ConnectRequest hello;
    hello.mutable_hello()->set_worker_id(worker_id);
    stream->Write(hello);
    stream->WritesDone();
    v1::ConnectResponse resp;
    EXPECT_FALSE(stream->Read(&resp)) << "no welcome for a stranger";
    return stream->Finish();
  };
  const grpc::Status unknown = connect(mesh_.admin_token(), "wrk_missing");
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  // The admin and the worker's own user are not its runner either.
  for (const std::string& token : {mesh_.admin_token(), alice_}) {
    const grpc::Status s = connect(token, w.id());
    if (token == alice_ && s.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
      EXPECT_THAT(s.error_message(), HasSubstr("runner.connect"));  // refused before: no leak
      continue;
    }
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("is not running here"));
  }
}

// A real agent CLI (tools/node_modules, pinned in tools/package.json) in the
// sandbox, against one of the scripted fakes of its model API (tests/fakes).
class FakeModelApiTest : public AgentServiceTest {
 protected:
  // The fake runs before the mesh starts: the operator's configured model
  // API (--session_agent_env's base URLs) is what the egress proxy lets the
  // sandbox reach, and the only way the agent reaches it.
  struct Fake {
    std::string dir, port;
    pid_t pid = 0;
  };
  static Fake StartFake(const char* fake) {
    Fake f;
    char tmpl[] = "/tmp/fake_model_api.XXXXXX";
    f.dir = mkdtemp(tmpl);
    f.pid = fork();
    if (f.pid == 0) {
      const std::string out = f.dir + "/port", log = f.dir + "/requests.jsonl";
      const std::string script = std::string(FAKES_DIR) + "/" + fake;
      if (freopen(out.c_str(), "w", stdout) == nullptr) _exit(126);
      execl("/usr/bin/python3", "python3", script.c_str(), "--port", "0", "--log", log.c_str(),
            nullptr);
      _exit(127);
    }
    for (int i = 0; i < 100 && f.port.empty(); ++i) {
      absl::SleepFor(absl::Milliseconds(50));
      std::ifstream in(f.dir + "/port");
      std::getline(in, f.port);
    }
    return f;
  }
  explicit FakeModelApiTest(const char* fake) : FakeModelApiTest(StartFake(fake)) {}
  explicit FakeModelApiTest(const Fake& f)
      : AgentServiceTest([f](MeshConfig& c) {
          c.agent_tool_dirs = {std::string(TOOLS_DIR) + "/node_modules"};
          c.session_agent_env["ANTHROPIC_BASE_URL"] = "http://127.0.0.1:" + f.port;
          c.session_agent_env["OPENAI_BASE_URL"] = "http://127.0.0.1:" + f.port + "/v1";
        }),
        dir_(f.dir),
        port_(f.port),
        fake_(f.pid) {}
  ~FakeModelApiTest() override {
    kill(fake_, SIGKILL);
    waitpid(fake_, nullptr, 0);
    std::filesystem::remove_all(dir_);
  }

  // The agent creates a project through its shell tool with its own token,
  // and a second task resumes the same agent session.
  void CreatesAProjectAndResumes(v1::AgentType agent, const std::map<std::string, std::string>& env,
                                 const std::string& project) {
    ASSERT_FALSE(port_.empty()) << "the fake model API did not start";
    v1::Worker w = Start({"project.*"}, agent, env);
    EXPECT_EQ(w.config().network_mode(), v1::NETWORK_MODE_OPEN);
    ASSERT_EQ(WaitFor(w.id(), v1::WORKER_STATE_READY, absl::Seconds(20)).state(),
              v1::WORKER_STATE_READY);
    TaskRun run = Run(w.id(), "Please create a project named " + project);
    ASSERT_TRUE(run.status.ok()) << run.status.error_message();
    EXPECT_EQ(run.result.status(), v1::TASK_STATUS_SUCCEEDED) << run.result.summary() << "\n"
                                                              << run.result.stderr_tail();
    EXPECT_THAT(Commands(run), HasSubstr("orchestrator project create " + project + " --json"));
    EXPECT_THAT(run.result.summary(), HasSubstr("Done: prj_"));
    // The sandbox has no network of its own: the model API was reached
    // through the mesh's egress proxy.
    EXPECT_THAT(log_.text(), HasSubstr(absl::StrCat("egress worker=", w.id(),
                                                    " target=127.0.0.1:", port_, " allowed")));
    ASSERT_FALSE(run.result.agent_session_id().empty());
    auto projects = orchestrator::projects::v1::ProjectService::NewStub(mesh_.channel());
    orchestrator::projects::v1::ListProjectsResponse listed;
    ASSERT_TRUE(projects
                    ->ListProjects(TestMesh::Context(alice_).get(),
                                   orchestrator::projects::v1::ListProjectsRequest(), &listed)
                    .ok());
    ASSERT_EQ(listed.projects_size(), 1);
    EXPECT_EQ(listed.projects(0).name(), project);

    // The next task resumes the same session: the fake sees the history.
    TaskRun second = Run(w.id(), "thanks", absl::ZeroDuration(), run.result.agent_session_id());
    ASSERT_TRUE(second.status.ok()) << second.status.error_message();
    EXPECT_EQ(second.result.status(), v1::TASK_STATUS_SUCCEEDED) << second.result.summary();
    EXPECT_EQ(second.result.agent_session_id(), run.result.agent_session_id());
    std::ifstream log(dir_ + "/requests.jsonl");
    std::string line, last;
    while (std::getline(log, line)) last = line;
    EXPECT_THAT(last, HasSubstr(project)) << "the resumed request should carry the earlier turn";
  }

  std::string dir_, port_;
  pid_t fake_ = 0;
  testing::LogCapture log_;
};

class ClaudeCodeWorkerTest : public FakeModelApiTest {
 protected:
  ClaudeCodeWorkerTest() : FakeModelApiTest("anthropic_api.py") {}
};

TEST_F(ClaudeCodeWorkerTest, ClaudeCodeRunsTheCliThroughItsBashToolAndResumesItsSession) {
  CreatesAProjectAndResumes(
      v1::AGENT_TYPE_CLAUDE_CODE,
      {{"ANTHROPIC_BASE_URL", "http://127.0.0.1:" + port_}, {"ANTHROPIC_API_KEY", "sk-fake"}},
      "cc-shop");
}

class CodexWorkerTest : public FakeModelApiTest {
 protected:
  CodexWorkerTest() : FakeModelApiTest("openai_api.py") {}
};

TEST_F(CodexWorkerTest, CodexRunsTheCliThroughItsShellToolAndResumesItsThread) {
  CreatesAProjectAndResumes(
      v1::AGENT_TYPE_CODEX,
      {{"OPENAI_BASE_URL", "http://127.0.0.1:" + port_ + "/v1"}, {"OPENAI_API_KEY", "sk-fake"}},
      "cx-shop");
}

}  // namespace
}  // namespace orchestrator::agents
