// The sandbox escape suite: an agent that does whatever a prompt injection
// tells it (the scripted agent's "run: COMMAND", a shell command through its
// Bash tool) inside a real worker (bubblewrap, orchestrator-runner, the whole
// mesh on a real PostgreSQL) tries to read what belongs to the host. It finds
// nothing of the host's environment or files, no secret is on any command
// line, what it starts in the background ends with its turn, and the
// operator's model key reaches the agent but no record a user can read.
// (Network probes live with the egress proxy's tests.)
#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/agents/v1/agents.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "orchestrator/sessions/v1/sessions.grpc.pb.h"
#include "tests/support/scripted_worker.h"
#include "tests/support/test_mesh.h"

namespace orchestrator::agents {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::orchestrator::agents::v1;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using testing::TestMesh;

constexpr char kOperatorKey[] = "sk-ant-operator-key-never-shown";

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The host's processes whose command line holds `needle`.
std::vector<pid_t> HostCommandLinesHolding(const std::string& needle) {
  std::vector<pid_t> found;
  for (const auto& e : fs::directory_iterator("/proc")) {
    int pid = 0;
    if (!absl::SimpleAtoi(e.path().filename().string(), &pid)) continue;
    if (ReadAll(e.path() / "cmdline").find(needle) != std::string::npos) found.push_back(pid);
  }
  return found;
}

// The runner of `worker_id` as the host sees it: its environment names it.
std::string RunnerEnvironment(const std::string& worker_id) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    int pid = 0;
    if (!absl::SimpleAtoi(e.path().filename().string(), &pid)) continue;
    const std::string env = ReadAll(e.path() / "environ");
    if (absl::StrContains(env, "ORCHESTRATOR_WORKER_ID=" + worker_id) &&
        absl::EndsWith(ReadAll(e.path() / "cmdline"), std::string("orchestrator-runner") + '\0')) {
      return env;
    }
  }
  return "";
}

std::string EnvValue(const std::string& environ, const std::string& name) {
  std::istringstream in(environ);
  std::string entry;
  while (std::getline(in, entry, '\0')) {
    if (absl::StartsWith(entry, name + "=")) return entry.substr(name.size() + 1);
  }
  return "";
}

// Set before the mesh starts: the environment orchestratord (this test
// process) has, and no sandbox may see.
struct HostEnvironment {
  HostEnvironment() : marker(absl::StrCat("host-secret-", getpid())) {
    setenv("ORCHESTRATOR_TEST_HOST_MARKER", marker.c_str(), 1);
  }
  ~HostEnvironment() { unsetenv("ORCHESTRATOR_TEST_HOST_MARKER"); }
  std::string marker;
};

class SandboxEscapeTest : public ::testing::Test {
 protected:
  SandboxEscapeTest()
      : mesh_("all",
              [](MeshConfig& c) {
                c.session_agent_env = {{"ANTHROPIC_API_KEY", kOperatorKey},
                                       {"ANTHROPIC_BASE_URL", "http://model.invalid"}};
              }),
        stub_(v1::AgentService::NewStub(mesh_.channel())) {
    std::tie(alice_id_, alice_) = mesh_.NewUser("alice");
  }

  v1::Worker StartReady(v1::StartWorkerRequest req) {
    return testing::ScriptedWorkers(stub_.get(), alice_).StartReady(std::move(req));
  }

  // What the agent's shell command printed (the reply: "exit N\n" + output).
  v1::TaskResult Run(const std::string& worker_id, const std::string& command) {
    return testing::ScriptedWorkers(stub_.get(), alice_).Run(worker_id, command);
  }

  HostEnvironment host_;
  TestMesh mesh_;
  std::unique_ptr<v1::AgentService::Stub> stub_;
  std::string alice_id_, alice_;
};

TEST_F(SandboxEscapeTest, NoProcessInsideShowsAnythingOfTheHostsEnvironment) {
  const v1::Worker w = StartReady({});
  // Every environment and command line the sandbox's /proc shows.
  const std::string out =
      Run(w.id(),
          "for p in /proc/[0-9]*; do tr '\\0' '\\n' < $p/environ; tr '\\0' ' ' < $p/cmdline; "
          "echo; done 2>/dev/null")
          .summary();
  ASSERT_THAT(out, HasSubstr("ORCHESTRATOR_WORKER_ID=" + w.id()))
      << "the probe should read the runner's own environment";
  EXPECT_THAT(out, Not(HasSubstr(host_.marker)));
  EXPECT_THAT(out, Not(HasSubstr("ORCHESTRATOR_TEST_HOST_MARKER")));
  // What pg_virtualenv gives the host (orchestratord) to reach PostgreSQL.
  for (const char* name : {"PGPASSWORD", "PGHOST", "PGUSER", "PGPORT"}) {
    EXPECT_THAT(out, Not(HasSubstr(absl::StrCat(name, "="))));
    const char* value = std::getenv(name);
    if (name == std::string("PGPASSWORD") && value != nullptr && *value != '\0') {
      EXPECT_THAT(out, Not(HasSubstr(value)));
    }
  }
}

TEST_F(SandboxEscapeTest, AWorkspaceIdIsNeverAPathIntoWhatAnAgentPlanted) {
  // An agent plants a fake workspace whose work directory links to the host's
  // root, then asks for a worker over it with a path for a workspace id.
  const v1::Worker w = StartReady({});
  const std::string planted =
      Run(w.id(), absl::StrCat("mkdir -p d && echo ", alice_id_,
                               " > d/owner && ln -s / d/work && ln -s / d/home && echo planted"))
          .summary();
  ASSERT_THAT(planted, HasSubstr("planted"));
  for (const std::string& id :
       {absl::StrCat(w.workspace_id(), "/work/d"), std::string("../workspaces/x"),
        absl::StrCat(w.workspace_id(), "/.."), std::string("wsp_a/../../..")}) {
    v1::StartWorkerRequest req;
    req.mutable_config()->set_workspace_id(id);
    req.mutable_config()->set_worker_type(v1::WORKER_TYPE_DEVELOPER);
    req.mutable_config()->set_agent_type(v1::AGENT_TYPE_SCRIPTED);
    v1::StartWorkerResponse resp;
    grpc::Status s = stub_->StartWorker(TestMesh::Context(alice_).get(), req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << id << ": " << s.error_message();
  }
}

TEST_F(SandboxEscapeTest, ASecretWithANulCannotBecomeBwrapOptions) {
  auto projects = orchestrator::projects::v1::ProjectService::NewStub(mesh_.channel());
  orchestrator::projects::v1::CreateProjectRequest create;
  create.mutable_project()->set_name("nul");
  orchestrator::projects::v1::CreateProjectResponse created;
  ASSERT_TRUE(projects->CreateProject(TestMesh::Context(alice_).get(), create, &created).ok());
  orchestrator::projects::v1::SetSecretRequest set;
  set.set_project_id(created.project().id());
  set.set_name("EVIL");
  set.set_value(std::string("x\0--bind\0/\0/host", 17));
  orchestrator::projects::v1::SetSecretResponse done;
  grpc::Status s = projects->SetSecret(TestMesh::Context(alice_).get(), set, &done);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::StartsWith("value:"));
}

TEST_F(SandboxEscapeTest, NoSecretIsOnAnyCommandLineOfTheHostOrTheSandbox) {
  auto projects = orchestrator::projects::v1::ProjectService::NewStub(mesh_.channel());
  orchestrator::projects::v1::CreateProjectRequest create;
  create.mutable_project()->set_name("shop");
  orchestrator::projects::v1::CreateProjectResponse created;
  ASSERT_TRUE(projects->CreateProject(TestMesh::Context(alice_).get(), create, &created).ok());
  const std::string secret = absl::StrCat("granted-secret-value-", getpid());
  orchestrator::projects::v1::SetSecretRequest set;
  set.set_project_id(created.project().id());
  set.set_name("DATABASE_URL");
  set.set_value(secret);
  orchestrator::projects::v1::SetSecretResponse done;
  ASSERT_TRUE(projects->SetSecret(TestMesh::Context(alice_).get(), set, &done).ok());
  v1::StartWorkerRequest req;
  req.mutable_config()->set_project_id(created.project().id());
  req.mutable_config()->add_secret_names("DATABASE_URL");
  const v1::Worker w = StartReady(req);

  const std::string token = EnvValue(RunnerEnvironment(w.id()), "ORCHESTRATOR_TOKEN");
  ASSERT_THAT(token, Not(IsEmpty())) << "the runner has its token in its environment";
  // bwrap and the runner are running now; none of them shows either value.
  ASSERT_THAT(HostCommandLinesHolding(w.workspace_id()), Not(IsEmpty()))
      << "bwrap's command line names the workspace";
  EXPECT_THAT(HostCommandLinesHolding(token), IsEmpty());
  EXPECT_THAT(HostCommandLinesHolding(secret), IsEmpty());
  const std::string inside =
      Run(w.id(), "cat /proc/[0-9]*/cmdline | tr '\\0' ' '; echo; echo \"$DATABASE_URL\"")
          .summary();
  EXPECT_THAT(inside, HasSubstr("orchestrator-runner"));
  EXPECT_THAT(inside, HasSubstr(secret + "\n")) << "the granted secret reaches the agent";
  EXPECT_THAT(inside.substr(0, inside.find(secret + "\n")), Not(HasSubstr(secret)));
  EXPECT_THAT(inside, Not(HasSubstr(token)));
}

TEST_F(SandboxEscapeTest, NothingOutsideTheWorkspaceIsVisible) {
  const v1::Worker w = StartReady({});
  const std::string build_bin = fs::read_symlink("/proc/self/exe").parent_path().string();
  const std::string workspaces = mesh_.config().agents_dir + "/workspaces";
  ASSERT_TRUE(fs::exists(build_bin + "/orchestrator-runner"));
  ASSERT_TRUE(fs::exists(workspaces));
  const std::string out =
      Run(w.id(), absl::StrCat("ls /opt/orchestrator/bin; echo ---; cat /etc/passwd /etc/group; ",
                               "echo ---; for p in ", build_bin, " ", SOURCE_DIR, " ", workspaces,
                               " /root /etc/shadow /home/postgres /var/lib/postgresql; do ",
                               "test -e $p && echo \"visible: $p\"; done; echo ---"))
          .summary();
  // The two binaries the worker needs, not the build's (tests included).
  EXPECT_THAT(out, HasSubstr("---\n")) << out;
  EXPECT_EQ(out.substr(0, out.find("---")), "exit 0\norchestrator\norchestrator-runner\n");
  // The sandbox's own users, none of the host's.
  EXPECT_THAT(out, HasSubstr("agent:x:1000:1000:agent:/home/agent:"));
  for (const char* host_user : {"daemon:", "postgres:", "www-data:"}) {
    EXPECT_THAT(out, Not(HasSubstr(host_user)));
  }
  EXPECT_THAT(out, Not(HasSubstr("visible:")));
}

TEST_F(SandboxEscapeTest, WhatTheAgentStartsInTheBackgroundEndsWithItsTurn) {
  const v1::Worker w = StartReady({});
  const absl::Time start = absl::Now();
  // Detached every way a shell can: nohup, setsid (a session of its own,
  // one with the turn's output still open), a double fork.
  const std::string out =
      Run(w.id(),
          "nohup sleep 1001 >/dev/null 2>&1 & setsid sleep 1002 >/dev/null 2>&1 & "
          "(setsid sh -c 'sleep 1003' >/dev/null 2>&1 &); setsid sleep 1004 & "
          "sleep 0.3; ps -eo args")
          .summary();
  EXPECT_LT(absl::Now() - start, absl::Seconds(15)) << "a detached process held the turn open";
  for (const char* seconds : {"1001", "1002", "1003", "1004"}) {
    EXPECT_THAT(out, HasSubstr(absl::StrCat("sleep ", seconds))) << "it should have started";
    EXPECT_THAT(HostCommandLinesHolding(absl::StrCat("sleep", std::string(1, '\0'), seconds)),
                IsEmpty())
        << "sleep " << seconds << " outlived the turn";
  }
  // The worker goes on: the runner was not among what ended.
  EXPECT_THAT(Run(w.id(), "echo still-here").summary(), HasSubstr("still-here"));
}

TEST_F(SandboxEscapeTest, TheOperatorsModelKeyReachesTheAgentButNoRecord) {
  auto sessions = orchestrator::sessions::v1::SessionService::NewStub(mesh_.channel());
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + alice_);
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  orchestrator::sessions::v1::SendMessageRequest send;
  send.set_text("is ANTHROPIC_API_KEY set");
  auto reader = sessions->SendMessage(&ctx, send);
  orchestrator::sessions::v1::SendMessageResponse step;
  std::string reply;
  while (reader->Read(&step)) {
    if (step.has_reply()) reply = step.reply().text();
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(reply,
            absl::StrCat("ANTHROPIC_API_KEY is set (", strlen(kOperatorKey), " characters)."));

  // Not in what the user (or even an admin) reads of the worker.
  v1::ListWorkersResponse listed;
  ASSERT_TRUE(
      stub_->ListWorkers(TestMesh::Context(alice_).get(), v1::ListWorkersRequest(), &listed).ok());
  ASSERT_EQ(listed.workers_size(), 1);
  EXPECT_EQ(listed.workers(0).config().worker_type(), v1::WORKER_TYPE_PO);
  EXPECT_THAT(listed.DebugString(), Not(HasSubstr(kOperatorKey)));
  EXPECT_THAT(listed.DebugString(), Not(HasSubstr("model.invalid")));
  v1::GetWorkerRequest get;
  get.set_worker_id(listed.workers(0).id());
  for (const std::string& token : {alice_, mesh_.admin_token()}) {
    v1::GetWorkerResponse got;
    ASSERT_TRUE(stub_->GetWorker(TestMesh::Context(token).get(), get, &got).ok());
    EXPECT_THAT(got.DebugString(), Not(HasSubstr(kOperatorKey)));
  }
  // Nor stored anywhere an operator's dump would show it.
  auto pool = mesh_.database().NewPool(1);
  for (const char* table : {"agents.workers", "agents.tasks"}) {
    const std::string sql = absl::StrCat("SELECT count(*) FROM ", table, " t WHERE t::text LIKE '%",
                                         kOperatorKey, "%'");
    auto rows = pool->Exec(db::Statement{"dump", sql});
    ASSERT_TRUE(rows.ok()) << rows.status();
    EXPECT_EQ(std::string(rows->Get(0, 0)), "0") << table;
  }

  // A worker a user starts through the API gets none of it.
  const v1::Worker own = StartReady({});
  grpc::ClientContext run_ctx;
  run_ctx.AddMetadata("authorization", "Bearer " + alice_);
  v1::RunTaskRequest run;
  run.set_worker_id(own.id());
  run.set_prompt("is ANTHROPIC_API_KEY set");
  auto task = stub_->RunTask(&run_ctx, run);
  v1::RunTaskResponse resp;
  std::string summary;
  while (task->Read(&resp)) {
    if (resp.has_result()) summary = resp.result().summary();
  }
  task->Finish();
  EXPECT_EQ(summary, "ANTHROPIC_API_KEY is not set.");
}

TEST_F(SandboxEscapeTest, ModelKeysThatEarlierVersionsStoredAreScrubbed) {
  // A PO session's worker as earlier versions stored it: the operator's
  // environment in its config.
  auto pool = mesh_.database().NewPool(1);
  const std::string old =
      absl::StrCat(R"({"id":"wrk_old","ownerId":")", alice_id_,
                   R"(","state":"WORKER_STATE_STOPPED","config":{"workerType":"WORKER_TYPE_PO",)",
                   R"("environment":{"ANTHROPIC_API_KEY":"sk-stored-by-an-old-version"}}})");
  ASSERT_TRUE(pool->Exec(db::Statement{"old_row",
                                       "INSERT INTO agents.workers (id, owner_id, state, worker) "
                                       "VALUES ('wrk_old', $1, 5, $2::jsonb)"},
                         {alice_id_, old})
                  .ok());
  // The upgrade: the migration runs (again) when the mesh starts.
  ASSERT_TRUE(pool->Exec(db::Statement{"forget",
                                       "DELETE FROM agents.schema_migrations "
                                       "WHERE version = 2"})
                  .ok());
  pool.reset();
  mesh_.Restart();
  auto stub = v1::AgentService::NewStub(mesh_.channel());
  v1::GetWorkerRequest get;
  get.set_worker_id("wrk_old");
  v1::GetWorkerResponse got;
  ASSERT_TRUE(stub->GetWorker(TestMesh::Context(alice_).get(), get, &got).ok());
  EXPECT_EQ(got.worker().config().worker_type(), v1::WORKER_TYPE_PO);
  EXPECT_THAT(got.DebugString(), Not(HasSubstr("sk-stored-by-an-old-version")));
}

}  // namespace
}  // namespace orchestrator::agents
