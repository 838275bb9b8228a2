// AgentService.RunCommand in a whole mesh on a real PostgreSQL: commands run
// by orchestrator-runner inside a real bubblewrap sandbox of a scripted
// worker, as the worker's user in its /workspace, one task or command at a
// time, their output byte for byte.
#include <filesystem>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/agents/v1/agents.grpc.pb.h"
#include "tests/support/scripted_worker.h"
#include "tests/support/test_mesh.h"

namespace orchestrator::agents {
namespace {

namespace v1 = ::orchestrator::agents::v1;
using ::testing::HasSubstr;
using testing::ScriptedWorkers;
using testing::TestMesh;

struct CommandRun {
  std::vector<v1::CommandOutput> outputs;
  std::optional<v1::CommandResult> result;
  grpc::Status status;

  // Standard output (and with merge_stderr, standard error) as written.
  std::string Stdout() const {
    std::string out;
    for (const auto& o : outputs) {
      if (!o.stderr()) out += o.data();
    }
    return out;
  }
  std::string Stderr() const {
    std::string err;
    for (const auto& o : outputs) {
      if (o.stderr()) err += o.data();
    }
    return err;
  }
};

class RunCommandTest : public ::testing::Test {
 protected:
  RunCommandTest() : mesh_("all"), stub_(v1::AgentService::NewStub(mesh_.channel())) {
    std::tie(alice_id_, alice_) = mesh_.NewUser("alice");
    std::tie(bob_id_, bob_) = mesh_.NewUser("bob");
  }

  v1::Worker StartReady(const std::string& token) {
    return ScriptedWorkers(stub_.get(), token).StartReady(v1::StartWorkerRequest());
  }

  static v1::RunCommandRequest Command(const std::string& worker_id,
                                       std::vector<std::string> argv) {
    v1::RunCommandRequest req;
    req.set_worker_id(worker_id);
    for (auto& a : argv) req.mutable_command()->add_argv(std::move(a));
    return req;
  }

  // Runs `req` as `token` (alice by default); `on_output` sees each output
  // as it arrives, and may cancel the call through `ctx`.
  CommandRun Run(const v1::RunCommandRequest& req, const std::string& token = "",
                 const std::function<void(const v1::CommandOutput&, grpc::ClientContext&)>&
                     on_output = nullptr) {
    auto ctx = TestMesh::Context(token.empty() ? alice_ : token);
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    auto reader = stub_->RunCommand(ctx.get(), req);
    CommandRun run;
    v1::RunCommandResponse message;
    while (reader->Read(&message)) {
      if (message.has_output()) {
        run.outputs.push_back(message.output());
        if (on_output) on_output(message.output(), *ctx);
      }
      if (message.has_result()) run.result = message.result();
    }
    run.status = reader->Finish();
    return run;
  }

  v1::Worker Get(const std::string& worker_id) {
    v1::GetWorkerRequest req;
    req.set_worker_id(worker_id);
    v1::GetWorkerResponse resp;
    EXPECT_TRUE(stub_->GetWorker(TestMesh::Context(alice_).get(), req, &resp).ok());
    return resp.worker();
  }

  // Waits (bounded) for the worker to be READY again after a command.
  void ExpectReadyAgain(const std::string& worker_id) {
    const absl::Time until = absl::Now() + absl::Seconds(20);
    while (Get(worker_id).state() != v1::WORKER_STATE_READY && absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    EXPECT_EQ(Get(worker_id).state(), v1::WORKER_STATE_READY);
  }

  TestMesh mesh_;
  std::unique_ptr<v1::AgentService::Stub> stub_;
  std::string alice_id_, alice_, bob_id_, bob_;
};

TEST_F(RunCommandTest, ACommandRunsAsTheWorkersUserInItsWorkspaceAndReadsItsStdin) {
  v1::Worker w = StartReady(alice_);
  v1::RunCommandRequest req = Command(w.id(), {"sh", "-c", "id -u; pwd; cat; echo; exit 3"});
  req.mutable_command()->set_stdin("hello from stdin");
  CommandRun run = Run(req);
  ASSERT_TRUE(run.status.ok()) << run.status.error_message();
  ASSERT_TRUE(run.result.has_value());
  EXPECT_EQ(run.Stdout(), "1000\n/workspace\nhello from stdin\n");
  EXPECT_EQ(run.result->exit_code(), 3);
  EXPECT_EQ(run.result->signal(), 0);
  EXPECT_FALSE(run.result->timed_out());
  EXPECT_FALSE(run.result->cancelled());
  EXPECT_TRUE(run.result->has_duration());
  ExpectReadyAgain(w.id());
}

TEST_F(RunCommandTest, BinaryOutputArrivesByteExactAndCompleteInChunksOfAtMost64KiB) {
  v1::Worker w = StartReady(alice_);
  std::string binary;
  for (int i = 0; i < 200 * 1024; ++i)
    binary.push_back(static_cast<char>((i * 131 + i / 256) % 256));
  v1::RunCommandRequest req = Command(w.id(), {"cat"});
  req.mutable_command()->set_stdin(binary);
  CommandRun run = Run(req);
  ASSERT_TRUE(run.status.ok()) << run.status.error_message();
  ASSERT_TRUE(run.result.has_value());
  EXPECT_EQ(run.result->exit_code(), 0);
  ASSERT_EQ(run.Stdout().size(), binary.size());
  EXPECT_TRUE(run.Stdout() == binary) << "the output differs from what the command wrote";
  for (const auto& o : run.outputs) EXPECT_LE(o.data().size(), 64u * 1024);
}

TEST_F(RunCommandTest, StandardErrorStreamsApartOrMergedOntoStandardOutput) {
  v1::Worker w = StartReady(alice_);
  v1::RunCommandRequest req = Command(w.id(), {"sh", "-c", "echo out; echo err >&2; exit 1"});
  CommandRun apart = Run(req);
  ASSERT_TRUE(apart.status.ok()) << apart.status.error_message();
  EXPECT_EQ(apart.Stdout(), "out\n");
  EXPECT_EQ(apart.Stderr(), "err\n");
  ASSERT_TRUE(apart.result.has_value());
  EXPECT_EQ(apart.result->exit_code(), 1);
  EXPECT_EQ(apart.result->stderr_tail(), "err\n");

  req.mutable_command()->set_merge_stderr(true);
  CommandRun merged = Run(req);
  ASSERT_TRUE(merged.status.ok()) << merged.status.error_message();
  EXPECT_EQ(merged.Stdout(), "out\nerr\n");
  EXPECT_EQ(merged.Stderr(), "");
}

TEST_F(RunCommandTest, ACommandPastItsTimeoutIsKilledAndTheWorkerTakesTheNext) {
  v1::Worker w = StartReady(alice_);
  v1::RunCommandRequest req = Command(w.id(), {"sleep", "30"});
  req.mutable_timeout()->set_seconds(1);
  const absl::Time start = absl::Now();
  CommandRun run = Run(req);
  ASSERT_TRUE(run.status.ok()) << run.status.error_message();
  ASSERT_TRUE(run.result.has_value());
  EXPECT_TRUE(run.result->timed_out());
  EXPECT_EQ(run.result->signal(), 9);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  ExpectReadyAgain(w.id());
  CommandRun next = Run(Command(w.id(), {"true"}));
  ASSERT_TRUE(next.result.has_value()) << next.status.error_message();
  EXPECT_EQ(next.result->exit_code(), 0);
}

TEST_F(RunCommandTest, LeavingACommandCancelsItAndItsResultSaysSo) {
  v1::Worker w = StartReady(alice_);
  v1::RunCommandRequest req =
      Command(w.id(), {"sh", "-c", "echo started; sleep 60 & sleep 60; echo never"});
  req.set_request_id("req-cancel-1");
  const absl::Time start = absl::Now();
  CommandRun run =
      Run(req, "", [](const v1::CommandOutput&, grpc::ClientContext& ctx) { ctx.TryCancel(); });
  EXPECT_EQ(run.status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(run.Stdout(), "started\n");
  ExpectReadyAgain(w.id());
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
  // A retry of the same request gets the command's saved result.
  CommandRun retry = Run(req);
  ASSERT_TRUE(retry.status.ok()) << retry.status.error_message();
  ASSERT_TRUE(retry.result.has_value());
  EXPECT_TRUE(retry.result->cancelled());
  // Nothing the command started is left running.
  CommandRun ps = Run(Command(
      w.id(), {"sh", "-c", "for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null; echo; done"}));
  ASSERT_TRUE(ps.result.has_value()) << ps.status.error_message();
  EXPECT_THAT(ps.Stdout(), ::testing::Not(HasSubstr("sleep")));
}

TEST_F(RunCommandTest, ACommandIsRefusedWhileATaskRunsAndATaskWhileACommandRuns) {
  v1::Worker w = StartReady(alice_);
  grpc::ClientContext task_ctx;
  task_ctx.AddMetadata("authorization", "Bearer " + alice_);
  v1::RunTaskRequest task;
  task.set_worker_id(w.id());
  task.set_prompt("wait 30 seconds");
  auto task_reader = stub_->RunTask(&task_ctx, task);
  const absl::Time until = absl::Now() + absl::Seconds(20);
  while (Get(w.id()).state() != v1::WORKER_STATE_BUSY && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  CommandRun refused = Run(Command(w.id(), {"true"}));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(refused.status.error_message(), HasSubstr("busy"));
  task_ctx.TryCancel();
  task_reader->Finish();
  ExpectReadyAgain(w.id());

  // And the other way round.
  CommandRun busy;
  std::thread command([&] {
    busy = Run(Command(w.id(), {"sh", "-c", "echo started; sleep 60"}), "",
               [this, &w](const v1::CommandOutput&, grpc::ClientContext& ctx) {
                 grpc::ClientContext second;
                 second.AddMetadata("authorization", "Bearer " + alice_);
                 v1::RunTaskRequest req;
                 req.set_worker_id(w.id());
                 req.set_prompt("what did i ask");
                 auto reader = stub_->RunTask(&second, req);
                 v1::RunTaskResponse ignored;
                 while (reader->Read(&ignored)) {
                 }
                 grpc::Status s = reader->Finish();
                 EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
                 EXPECT_THAT(s.error_message(), HasSubstr("busy"));
                 ctx.TryCancel();
               });
  });
  command.join();
  EXPECT_EQ(busy.status.error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(RunCommandTest, TheWorkersTokenIsInTheEnvironmentOnlyWhenAskedFor) {
  v1::Worker w = StartReady(alice_);
  v1::RunCommandRequest req = Command(
      w.id(), {"sh", "-c", "echo ${ORCHESTRATOR_TOKEN:-none} ${ORCHESTRATOR_WORKER_ID} $GREETING"});
  (*req.mutable_command()->mutable_environment())["GREETING"] = "hi";
  CommandRun without = Run(req);
  ASSERT_TRUE(without.result.has_value()) << without.status.error_message();
  EXPECT_EQ(without.Stdout(), absl::StrCat("none ", w.id(), " hi\n"));

  req.mutable_command()->set_with_worker_token(true);
  CommandRun with = Run(req);
  ASSERT_TRUE(with.result.has_value()) << with.status.error_message();
  EXPECT_THAT(with.Stdout(), ::testing::Not(::testing::StartsWith("none ")));
  EXPECT_THAT(with.Stdout(), ::testing::EndsWith(absl::StrCat(" ", w.id(), " hi\n")));
}

TEST_F(RunCommandTest, AFileOneCommandWritesIsReadByTheNextInItsWorkingDirectory) {
  v1::Worker w = StartReady(alice_);
  CommandRun write =
      Run(Command(w.id(), {"sh", "-c", "mkdir -p repo/sub && printf data > repo/sub/f"}));
  ASSERT_TRUE(write.result.has_value()) << write.status.error_message();
  ASSERT_EQ(write.result->exit_code(), 0) << write.result->stderr_tail();
  v1::RunCommandRequest read = Command(w.id(), {"cat", "f"});
  read.mutable_command()->set_working_directory("repo/sub");
  CommandRun got = Run(read);
  ASSERT_TRUE(got.result.has_value()) << got.status.error_message();
  EXPECT_EQ(got.Stdout(), "data");
  // A program that is not there, a directory that is not there: the
  // command fails, the worker stays.
  CommandRun missing = Run(Command(w.id(), {"no-such-program"}));
  ASSERT_TRUE(missing.result.has_value()) << missing.status.error_message();
  EXPECT_EQ(missing.result->exit_code(), 127);
  EXPECT_THAT(missing.result->stderr_tail(), HasSubstr("no-such-program"));
  read.mutable_command()->set_working_directory("repo/none");
  CommandRun nowhere = Run(read);
  ASSERT_TRUE(nowhere.result.has_value()) << nowhere.status.error_message();
  EXPECT_EQ(nowhere.result->exit_code(), 126);
  EXPECT_THAT(nowhere.result->stderr_tail(), HasSubstr("repo/none"));
  ExpectReadyAgain(w.id());
}

TEST_F(RunCommandTest, BadCommandsAndOtherWorkersAreRefused) {
  v1::Worker w = StartReady(alice_);
  auto refused = [&](v1::RunCommandRequest req, grpc::StatusCode code, const std::string& says,
                     const std::string& token = "") {
    CommandRun run = Run(req, token);
    EXPECT_EQ(run.status.error_code(), code) << run.status.error_message();
    EXPECT_THAT(run.status.error_message(), HasSubstr(says));
    EXPECT_FALSE(run.result.has_value());
  };
  refused(Command(w.id(), {}), grpc::StatusCode::INVALID_ARGUMENT, "command.argv");
  refused(Command(w.id(), {""}), grpc::StatusCode::INVALID_ARGUMENT, "command.argv");
  for (const char* dir : {"/etc", "..", "repo/../..", "a/.."}) {
    v1::RunCommandRequest req = Command(w.id(), {"ls"});
    req.mutable_command()->set_working_directory(dir);
    refused(req, grpc::StatusCode::INVALID_ARGUMENT, "command.working_directory");
  }
  v1::RunCommandRequest path = Command(w.id(), {"ls"});
  (*path.mutable_command()->mutable_environment())["PATH"] = "/tmp";
  refused(path, grpc::StatusCode::INVALID_ARGUMENT, "command.environment");
  refused(Command("wrk_missing", {"ls"}), grpc::StatusCode::NOT_FOUND, "not found");
  // Bob's worker is not found for alice, exactly like a missing one.
  v1::Worker bobs = StartReady(bob_);
  refused(Command(bobs.id(), {"ls"}), grpc::StatusCode::NOT_FOUND,
          absl::StrCat("worker '", bobs.id(), "' not found"));

  // A worker that is not READY.
  v1::PauseWorkerRequest pause;
  pause.set_worker_id(w.id());
  v1::PauseWorkerResponse paused;
  ASSERT_TRUE(stub_->PauseWorker(TestMesh::Context(alice_).get(), pause, &paused).ok());
  refused(Command(w.id(), {"ls"}), grpc::StatusCode::FAILED_PRECONDITION, "paused");
}

}  // namespace
}  // namespace orchestrator::agents
