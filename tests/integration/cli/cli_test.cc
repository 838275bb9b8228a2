// The CLI against a whole mesh on a real PostgreSQL, run the way a person or
// a program would: output, --json, --follow exit statuses, a limited agent
// token, a component that is not built yet, a unix-socket address.
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "clients/cli/app.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/admin/v1/admin.pb.h"
#include "orchestrator/jobs/v1/jobs.pb.h"
#include "orchestrator/projects/v1/projects.pb.h"
#include "tests/support/free_port.h"
#include "tests/support/test_mesh.h"

namespace orchestrator::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::TestMesh;

struct Result {
  int status;
  std::string out, err;
};

class CliTest : public ::testing::Test {
 protected:
  explicit CliTest(const std::string& listen = "")
      : mesh_("all", [listen](MeshConfig& c) {
          c.demo_jobs = true;
          if (!listen.empty()) c.listen = listen;
        }) {
    std::tie(alice_id_, alice_) = mesh_.NewUser("alice");
  }

  Result Cli(const std::vector<std::string>& args, const std::string& token,
             const std::string& stdin_text = "", const std::string& idempotency_key = "") {
    Environment env;
    env.vars["ORCHESTRATOR_ADDR"] = mesh_.address();
    env.vars["ORCHESTRATOR_TOKEN"] = token;
    if (!idempotency_key.empty()) env.vars["ORCHESTRATOR_IDEMPOTENCY_KEY"] = idempotency_key;
    env.read_stdin = [stdin_text] { return stdin_text; };
    std::ostringstream out, err;
    const int status = cli::Run(args, env, out, err);
    return {status, out.str(), err.str()};
  }

  // The value of "key:  value" in key/value output.
  static std::string Value(const std::string& out, const std::string& key) {
    for (absl::string_view line : absl::StrSplit(out, '\n')) {
      if (absl::StartsWith(line, key + ":")) {
        return std::string(absl::StripAsciiWhitespace(line.substr(key.size() + 1)));
      }
    }
    return "";
  }

  TestMesh mesh_;
  std::string alice_id_, alice_;
};

TEST_F(CliTest, ProjectsRoundTripAsTablesAndJson) {
  auto created = Cli({"project", "create", "shop", "--display-name", "The Shop"}, alice_);
  ASSERT_EQ(created.status, 0) << created.err;
  const std::string id = Value(created.out, "id");
  ASSERT_FALSE(id.empty()) << created.out;
  EXPECT_EQ(Value(created.out, "display_name"), "The Shop");
  EXPECT_THAT(Value(created.out, "create_time"), HasSubstr("UTC (just now)"));

  auto listed = Cli({"project", "list"}, alice_);
  ASSERT_EQ(listed.status, 0) << listed.err;
  std::vector<std::string> lines = absl::StrSplit(listed.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << listed.out;
  EXPECT_THAT(lines[0], ::testing::MatchesRegex("ID +NAME +STATUS +REPOSITORY +UPDATED"));
  EXPECT_THAT(lines[1], ::testing::StartsWith(id));
  EXPECT_EQ(lines[0].find("NAME"), lines[1].find("shop"));  // aligned

  auto json = Cli({"project", "get", id, "--json"}, alice_);
  ASSERT_EQ(json.status, 0) << json.err;
  orchestrator::projects::v1::GetProjectResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &parsed).ok()) << json.out;
  EXPECT_EQ(parsed.project().name(), "shop");
  EXPECT_EQ(parsed.project().display_name(), "The Shop");

  auto updated = Cli({"project", "update", id, "--description", "sells things"}, alice_);
  ASSERT_EQ(updated.status, 0) << updated.err;
  EXPECT_EQ(Value(updated.out, "description"), "sells things");
  EXPECT_EQ(Value(updated.out, "display_name"), "The Shop");  // the mask kept the rest

  auto secret = Cli({"project", "set-secret", id, "DATABASE_URL"}, alice_, "postgres://x\n");
  ASSERT_EQ(secret.status, 0) << secret.err;
  auto secrets = Cli({"project", "secrets", id}, alice_);
  EXPECT_THAT(secrets.out, HasSubstr("DATABASE_URL"));
  EXPECT_THAT(secrets.out, Not(HasSubstr("postgres://")));

  auto missing = Cli({"project", "get", "prj_nope"}, alice_);
  EXPECT_EQ(missing.status, kExitNotFound);
  EXPECT_THAT(missing.err, HasSubstr("error: NOT_FOUND"));
  auto invalid = Cli({"project", "create", "Bad Name!"}, alice_);
  EXPECT_EQ(invalid.status, kExitRejected);
  EXPECT_THAT(invalid.err, HasSubstr("error: INVALID_ARGUMENT: project.name"));
}

// An agent's task run again (after a restart cut it off) repeats nothing:
// in one task, the same command is the same request.
TEST_F(CliTest, InsideATaskTheSameCommandIsOneRequestAndAnotherIsNew) {
  const std::vector<std::string> demo = {
      "jobs", "demo", "demo.sleep", "--params", R"({"seconds":0.1,"steps":1})", "--json"};
  auto job = [](const Result& r) {
    orchestrator::jobs::v1::EnqueueDemoJobResponse parsed;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &parsed).ok()) << r.out;
    return parsed.job().id();
  };
  auto first = Cli(demo, alice_, "", "msg_task1");
  ASSERT_EQ(first.status, 0) << first.err;
  auto again = Cli(demo, alice_, "", "msg_task1");
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(job(again), job(first));
  // Another task, or no task at all: a new job each time.
  auto other_task = Cli(demo, alice_, "", "msg_task2");
  EXPECT_NE(job(other_task), job(first));
  auto untasked = Cli(demo, alice_);
  auto untasked_again = Cli(demo, alice_);
  EXPECT_NE(job(untasked), job(untasked_again));
  // Another command in the same task is another request.
  auto project = Cli({"project", "create", "shop", "--json"}, alice_, "", "msg_task1");
  EXPECT_EQ(project.status, 0) << project.err;
}

TEST_F(CliTest, FollowStreamsASucceedingJobAndExitsZero) {
  auto r =
      Cli({"jobs", "demo", "demo.sleep", "--params", R"({"seconds":0.3,"steps":3})", "--follow"},
          alice_);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("following job"));
  EXPECT_THAT(r.out, HasSubstr("#1  state-changed  queued\n"));
  EXPECT_THAT(r.out, HasSubstr("queued → running (attempt 1)"));
  EXPECT_THAT(r.out, HasSubstr("progress  33%"));
  EXPECT_THAT(r.out, HasSubstr("running → succeeded"));
  EXPECT_THAT(r.out, ::testing::MatchesRegex("(.|\n)*job job_[a-z0-9]+ succeeded in [0-9.]+m?s\n"));
}

TEST_F(CliTest, FollowOfAFailingJobExitsOneWithItsError) {
  auto r = Cli(
      {"jobs", "demo", "demo.fail", "--params", R"({"code":"FAILED_PRECONDITION"})", "--follow"},
      alice_);
  EXPECT_EQ(r.status, kExitJobFailed) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("running → failed"));
  EXPECT_THAT(r.err, HasSubstr(" failed"));
  EXPECT_THAT(r.err, HasSubstr("FAILED_PRECONDITION"));

  // jobs watch of the ended job replays it and reports the same outcome.
  const std::string id = Value(r.out, "id");
  auto watched = Cli({"jobs", "watch", id}, alice_);
  EXPECT_EQ(watched.status, kExitJobFailed);
  EXPECT_THAT(watched.out, HasSubstr("#1  state-changed"));
  auto json = Cli({"jobs", "watch", id, "--json", "--after", "1"}, alice_);
  EXPECT_EQ(json.status, kExitJobFailed);
  std::vector<std::string> lines = absl::StrSplit(json.out, '\n', absl::SkipEmpty());
  ASSERT_FALSE(lines.empty());
  orchestrator::jobs::v1::JobEvent first;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(lines[0], &first).ok()) << lines[0];
  EXPECT_EQ(first.sequence(), 2);  // resumed after 1: no duplicate

  auto events = Cli({"jobs", "events", id}, alice_);
  EXPECT_EQ(events.status, 0);
  EXPECT_THAT(events.out, ::testing::StartsWith("SEQ  TIME"));
  auto listed = Cli({"jobs", "list", "--state", "failed"}, alice_);
  EXPECT_THAT(listed.out, HasSubstr(id));
}

TEST_F(CliTest, AnAgentTokenLimitedToProjectGetIsRefusedByTheMeshWithThePermission) {
  auto created = Cli({"project", "create", "shop"}, alice_);
  ASSERT_EQ(created.status, 0) << created.err;
  auto token = Cli({"admin", "create-token", alice_id_, "--kind", "agent", "--permissions",
                    "project.get", "--json"},
                   mesh_.admin_token());
  ASSERT_EQ(token.status, 0) << token.err;
  orchestrator::admin::v1::CreateTokenResponse minted;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(token.out, &minted).ok()) << token.out;
  const std::string value = minted.value();
  ASSERT_FALSE(value.empty()) << token.out;

  auto get = Cli({"project", "get", Value(created.out, "id")}, value);
  EXPECT_EQ(get.status, 0) << get.err;
  auto create = Cli({"project", "create", "other"}, value);
  EXPECT_EQ(create.status, kExitDenied);
  EXPECT_THAT(create.err,
              HasSubstr("error: PERMISSION_DENIED: missing permission 'project.create'"));
  EXPECT_THAT(create.err,
              HasSubstr("'orchestrator project create' needs permission 'project.create'"));
  auto whoami = Cli({"whoami"}, value);
  EXPECT_EQ(whoami.status, 0) << whoami.err;
  EXPECT_THAT(whoami.out, HasSubstr("project.get"));

  auto nobody = Cli({"project", "list"}, "orc_not_a_token");
  EXPECT_EQ(nobody.status, kExitDenied);
  EXPECT_THAT(nobody.err, HasSubstr("UNAUTHENTICATED"));
}

TEST_F(CliTest, TheSchedulersTasksAreListedForAnAdminOnly) {
  auto r = Cli({"scheduler", "tasks"}, mesh_.admin_token());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("jobs.prune"));
  auto denied = Cli({"scheduler", "tasks"}, alice_);
  EXPECT_EQ(denied.status, kExitDenied);
  EXPECT_THAT(denied.err, HasSubstr("scheduler.task.list"));
  // Rescheduled, paused with a note, shown, and refused a bad cron.
  auto every = Cli(
      {"scheduler", "schedule", "jobs.prune", "--every", "2h", "--overlap", "allow-all", "--json"},
      mesh_.admin_token());
  EXPECT_EQ(every.status, 0) << every.err;
  EXPECT_THAT(every.out, HasSubstr("\"interval\":\"7200s\""));
  EXPECT_THAT(every.out, HasSubstr("OVERLAP_POLICY_ALLOW_ALL"));
  auto paused =
      Cli({"scheduler", "pause", "jobs.prune", "--note", "disk is full"}, mesh_.admin_token());
  EXPECT_EQ(paused.status, 0) << paused.err;
  auto shown = Cli({"scheduler", "task", "jobs.prune", "--json"}, mesh_.admin_token());
  EXPECT_THAT(shown.out, HasSubstr("TASK_STATE_PAUSED"));
  EXPECT_THAT(shown.out, HasSubstr("disk is full"));
  auto bad =
      Cli({"scheduler", "schedule", "jobs.prune", "--cron", "0 25 * * *"}, mesh_.admin_token());
  EXPECT_EQ(bad.status, kExitRejected);
  EXPECT_THAT(bad.err, HasSubstr("cron: bad hour field"));
  auto run = Cli({"scheduler", "run", "jobs.prune", "--follow"}, mesh_.admin_token());
  EXPECT_EQ(run.status, 0) << run.err;
  auto runs = Cli({"scheduler", "runs", "jobs.prune"}, mesh_.admin_token());
  EXPECT_THAT(runs.out, HasSubstr("manual"));
  // finish is served, but only means something from a worker's token.
  auto finish = Cli({"finish", "--summary", "done"}, alice_);
  EXPECT_EQ(finish.status, kExitRejected);
  EXPECT_THAT(finish.err, HasSubstr("FAILED_PRECONDITION"));
}

TEST_F(CliTest, AServersOwnUnavailableIsNotBlamedOnTheAddress) {
  const std::string key_file =
      (std::filesystem::temp_directory_path() / absl::StrCat("cli-key-", getpid())).string();
  std::ofstream(key_file) << "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"
                             "-----END OPENSSH PRIVATE KEY-----\n";
  auto registered = Cli(
      {"infra", "register", "nowhere", "--address", absl::StrCat("127.0.0.1:", testing::FreePort()),
       "--ssh-user", "ops", "--port-range-start", "40000", "--port-range-end", "40009", "--domain",
       "apps.example.com", "--ssh-key-file", key_file},
      mesh_.admin_token());
  std::filesystem::remove(key_file);
  ASSERT_EQ(registered.status, 0) << registered.err;
  auto provision = Cli({"infra", "provision", Value(registered.out, "id")}, mesh_.admin_token());
  EXPECT_EQ(provision.status, kExitUnavailable);
  EXPECT_THAT(provision.err, HasSubstr("cannot reach ops@127.0.0.1"));
  EXPECT_THAT(provision.err, Not(HasSubstr("is orchestratord running")));
}

TEST_F(CliTest, AnAdminListsTriggersAndClearsPipelineSteps) {
  const std::string admin = mesh_.admin_token();
  auto steps = Cli({"admin", "steps"}, admin);
  ASSERT_EQ(steps.status, 0) << steps.err;
  EXPECT_THAT(steps.out, ::testing::ContainsRegex("NAME +JOB KIND +PER PROJECT +PARAMETERS"));
  EXPECT_THAT(steps.out, HasSubstr("instructions (required)"));
  auto json = Cli({"admin", "steps", "--json"}, admin);
  ASSERT_EQ(json.status, 0) << json.err;
  EXPECT_THAT(json.out, HasSubstr("\"perProject\":true"));
  EXPECT_EQ(Cli({"admin", "steps"}, alice_).status, kExitDenied);

  auto project = Cli({"project", "create", "shop"}, alice_);
  ASSERT_EQ(project.status, 0) << project.err;
  const std::string id = Value(project.out, "id");
  auto bad = Cli({"admin", "trigger-step", id, "deploy", "--param", "colour=blue"}, admin);
  EXPECT_EQ(bad.status, kExitRejected);
  EXPECT_THAT(bad.err, HasSubstr("colour"));
  EXPECT_EQ(Cli({"admin", "trigger-step", id, "no-such-step"}, admin).status, kExitNotFound);
  auto scaffolded = Cli(
      {"admin", "trigger-step", id, "scaffold", "--param", "template_id=static-site", "--follow"},
      admin);
  EXPECT_EQ(scaffolded.status, 0) << scaffolded.err;

  EXPECT_EQ(Cli({"admin", "clear-project", id}, admin).status, kExitUsage);
  auto cleared = Cli({"admin", "clear-project", id, "--confirm", "--json"}, admin);
  ASSERT_EQ(cleared.status, 0) << cleared.err;
  EXPECT_THAT(cleared.out, HasSubstr("\"jobsDeleted\":1"));
  auto jobs = Cli({"jobs", "list", "--json"}, alice_);
  EXPECT_THAT(jobs.out, Not(HasSubstr(id)));
}

class CliUnixSocketTest : public CliTest {
 protected:
  CliUnixSocketTest() : CliTest(absl::StrCat("unix:/tmp/orchestrator-cli-", getpid(), ".sock")) {}
};

TEST_F(CliUnixSocketTest, AUnixSocketAddressWorks) {
  ASSERT_TRUE(absl::StartsWith(mesh_.address(), "unix:/")) << mesh_.address();
  auto r = Cli({"project", "create", "sock"}, alice_);
  EXPECT_EQ(r.status, 0) << r.err;
  auto listed = Cli({"project", "list"}, alice_);
  EXPECT_THAT(listed.out, HasSubstr("sock"));
}

}  // namespace
}  // namespace orchestrator::cli
