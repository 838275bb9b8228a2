// The session manager in a whole mesh: a user's messages reach their PO
// agent (the scripted one, in a real sandbox, acting through the CLI), one
// turn at a time, across a restart, and a finished job comes back as a
// notification nobody asked for.
#include <thread>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/agents/v1/agents.grpc.pb.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "orchestrator/sessions/v1/sessions.grpc.pb.h"
#include "services/common/db/pool.h"
#include "tests/support/send_message_stream.h"
#include "tests/support/test_mesh.h"

namespace orchestrator::sessions {
namespace {

namespace v1 = ::orchestrator::sessions::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TestMesh;

using Turn = testing::Turn;
using Stream = testing::SendMessageStream;

bool Running(const v1::SendMessageResponse& r) {
  return r.has_agent_event() && r.agent_event().has_tool_call();
}

class SessionServiceTest : public ::testing::Test {
 protected:
  SessionServiceTest()
      : mesh_("all", [](MeshConfig& c) { c.demo_jobs = true; }),
        stub_(v1::SessionService::NewStub(mesh_.channel())) {
    std::tie(alice_id_, alice_) = mesh_.NewUser("alice");
    std::tie(bob_id_, bob_) = mesh_.NewUser("bob");
  }

  Turn Send(const std::string& text, const std::string& token = "") {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + (token.empty() ? alice_ : token));
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    v1::SendMessageRequest req;
    req.set_text(text);
    auto reader = stub_->SendMessage(&ctx, req);
    Turn turn;
    v1::SendMessageResponse r;
    while (reader->Read(&r)) turn.steps.push_back(r);
    turn.status = reader->Finish();
    return turn;
  }

  v1::Session Session(const std::string& id) {
    v1::GetSessionRequest req;
    req.set_session_id(id);
    v1::GetSessionResponse resp;
    EXPECT_TRUE(stub_->GetSession(TestMesh::Context(alice_).get(), req, &resp).ok());
    return resp.session();
  }

  TestMesh mesh_;
  std::unique_ptr<v1::SessionService::Stub> stub_;
  std::string alice_id_, alice_, bob_id_, bob_;
};

TEST_F(SessionServiceTest, AMessageReachesThePoAgentWhichActsAndAnswers) {
  Turn turn = Send("Hi! Please create a project named shop");
  ASSERT_TRUE(turn.status.ok()) << turn.status.error_message();
  ASSERT_FALSE(turn.steps.empty());
  ASSERT_TRUE(turn.steps.front().has_accepted());
  EXPECT_EQ(turn.steps.front().accepted().queue_position(), 0);
  bool started_worker = false, ran_cli = false;
  for (const auto& s : turn.steps) {
    if (s.has_progress() && s.progress().stage() == v1::TURN_STAGE_STARTING_WORKER)
      started_worker = true;
    if (s.has_agent_event() && s.agent_event().has_tool_call() &&
        absl::StrContains(s.agent_event().tool_call().input().fields().at("command").string_value(),
                          "orchestrator project create shop")) {
      ran_cli = true;
    }
  }
  EXPECT_TRUE(started_worker);
  EXPECT_TRUE(ran_cli);
  EXPECT_TRUE(turn.steps.back().has_reply());
  EXPECT_THAT(turn.reply(), HasSubstr("Created project shop (prj_"));

  auto projects = orchestrator::projects::v1::ProjectService::NewStub(mesh_.channel());
  orchestrator::projects::v1::ListProjectsResponse listed;
  ASSERT_TRUE(projects
                  ->ListProjects(TestMesh::Context(alice_).get(),
                                 orchestrator::projects::v1::ListProjectsRequest(), &listed)
                  .ok());
  ASSERT_EQ(listed.projects_size(), 1);

  // The next message goes to the same agent session, which remembers.
  const std::string session_id = turn.steps.front().accepted().session_id();
  const std::string agent_session = Session(session_id).agent_session_id();
  ASSERT_FALSE(agent_session.empty());
  Turn next = Send("what did I ask?");
  EXPECT_THAT(next.reply(), HasSubstr("create a project named shop"));
  EXPECT_EQ(next.steps.front().accepted().session_id(), session_id);
  EXPECT_EQ(Session(session_id).agent_session_id(), agent_session);

  // Another user sees nothing of it.
  v1::GetSessionRequest other;
  other.set_session_id(session_id);
  v1::GetSessionResponse resp;
  EXPECT_EQ(stub_->GetSession(TestMesh::Context(bob_).get(), other, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(SessionServiceTest, LaterMessagesQueueBehindTheTurnInProgress) {
  ASSERT_TRUE(Send("hello").status.ok());  // the worker is up
  Turn first, second;
  std::thread a([&] { first = Send("wait 2 seconds"); });
  absl::SleepFor(absl::Milliseconds(500));
  std::thread b([&] { second = Send("what did i ask"); });
  a.join();
  b.join();
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  ASSERT_TRUE(second.status.ok()) << second.status.error_message();
  EXPECT_EQ(second.steps.front().accepted().queue_position(), 1);
  EXPECT_THAT(first.reply(), HasSubstr("Waited 2 seconds"));
  EXPECT_THAT(second.reply(), HasSubstr("wait 2 seconds"));  // it ran after the first
}

TEST_F(SessionServiceTest, AFinishedJobComesBackAsANotification) {
  grpc::ClientContext watch;
  watch.AddMetadata("authorization", "Bearer " + alice_);
  watch.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  auto notifications = stub_->WatchNotifications(&watch, v1::WatchNotificationsRequest());

  Turn turn = Send("start a demo job please");
  ASSERT_TRUE(turn.status.ok()) << turn.status.error_message();
  EXPECT_THAT(turn.reply(), HasSubstr("Started job job_"));
  const std::string reply = turn.reply();
  const std::string job = reply.substr(reply.find("job_"), reply.find(';') - reply.find("job_"));

  v1::WatchNotificationsResponse n;
  bool told = false;
  while (notifications->Read(&n)) {
    if (n.notification().kind() == v1::NOTIFICATION_KIND_JOB_UPDATE) {
      EXPECT_EQ(n.notification().job_id(), job);
      EXPECT_EQ(n.notification().text(), "Your job " + job + " succeeded.");
      EXPECT_EQ(n.notification().sequence(), 1);
      told = true;
      watch.TryCancel();
      break;
    }
  }
  EXPECT_TRUE(told) << "no notification of the finished job";
  notifications->Finish();

  // Watching again from the start replays it.
  grpc::ClientContext again;
  again.AddMetadata("authorization", "Bearer " + alice_);
  auto replay = stub_->WatchNotifications(&again, v1::WatchNotificationsRequest());
  ASSERT_TRUE(replay->Read(&n));
  EXPECT_EQ(n.notification().job_id(), job);
  again.TryCancel();
  replay->Finish();
}

TEST_F(SessionServiceTest, AJobAskingForAHumanReachesItsOwnerWithNoSessionOpen) {
  // Bob never talked to a PO agent: his failed job is told only because it
  // asks for him (FAILED_PRECONDITION, "needs a human: ...").
  grpc::ClientContext watch;
  watch.AddMetadata("authorization", "Bearer " + bob_);
  watch.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  auto notifications = stub_->WatchNotifications(&watch, v1::WatchNotificationsRequest());

  auto jobs = orchestrator::jobs::v1::JobService::NewStub(mesh_.channel());
  std::string plain_job, escalated_job;
  for (const char* message :
       {"port 8080 is taken", "needs a human: tests still fail after 2 iterations"}) {
    orchestrator::jobs::v1::EnqueueDemoJobRequest req;
    req.set_kind("demo.fail");
    (*req.mutable_params()->mutable_fields())["code"].set_string_value("FAILED_PRECONDITION");
    (*req.mutable_params()->mutable_fields())["message"].set_string_value(message);
    req.set_max_attempts(1);
    orchestrator::jobs::v1::EnqueueDemoJobResponse resp;
    grpc::Status s = jobs->EnqueueDemoJob(TestMesh::Context(bob_).get(), req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    (plain_job.empty() ? plain_job : escalated_job) = resp.job().id();
  }

  v1::WatchNotificationsResponse n;
  ASSERT_TRUE(notifications->Read(&n)) << "no notification of the job asking for a human";
  EXPECT_EQ(n.notification().kind(), v1::NOTIFICATION_KIND_JOB_UPDATE);
  EXPECT_EQ(n.notification().job_id(), escalated_job);
  EXPECT_EQ(n.notification().text(), "Your demo.fail job " + escalated_job +
                                         " failed: needs a human: tests still fail after 2 "
                                         "iterations");
  watch.TryCancel();
  notifications->Finish();
}

TEST_F(SessionServiceTest, AfterARestartTheNextMessageResumesTheSameAgentSession) {
  Turn first = Send("remember the word pineapple");
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  const std::string session_id = first.steps.front().accepted().session_id();
  const v1::Session before = Session(session_id);
  mesh_.Restart();
  stub_ = v1::SessionService::NewStub(mesh_.channel());  // the restarted mesh's address
  Turn after = Send("what did i ask");
  ASSERT_TRUE(after.status.ok()) << after.status.error_message();
  EXPECT_EQ(after.steps.front().accepted().session_id(), session_id);
  EXPECT_THAT(after.reply(), HasSubstr("pineapple"));
  const v1::Session now = Session(session_id);
  EXPECT_EQ(now.agent_session_id(), before.agent_session_id());
  EXPECT_NE(now.worker_id(), before.worker_id());
  EXPECT_EQ(now.workspace_id(), before.workspace_id());
}

// What the PO says with `orchestrator respond` reaches the user as it is
// said, and its closing text after it: nothing the agent said is dropped.
TEST_F(SessionServiceTest, ARespondAndADifferentClosingTextBothReachTheUserInOrder) {
  Turn turn = Send(R"(respond "On it: building shop now." then say "Shop is built and live.")");
  ASSERT_TRUE(turn.status.ok()) << turn.status.error_message();
  EXPECT_THAT(turn.replies(), ElementsAre("On it: building shop now.", "Shop is built and live."));
  EXPECT_TRUE(turn.steps.back().has_reply());
  // The respond reached the user while the agent was still at work: before
  // the agent's closing words.
  size_t respond_at = 0, closing_at = 0;
  for (size_t i = 0; i < turn.steps.size(); ++i) {
    const auto& s = turn.steps[i];
    if (s.has_reply() && s.reply().text() == "On it: building shop now.") respond_at = i;
    if (s.has_agent_event() && s.agent_event().has_text() &&
        s.agent_event().text().text() == "Shop is built and live.")
      closing_at = i;
  }
  EXPECT_GT(closing_at, respond_at);
}

TEST_F(SessionServiceTest, AClosingTextThatRepeatsTheRespondIsSentOnce) {
  Turn turn = Send(R"(respond "Your shop is live." then say "Your shop is live.")");
  ASSERT_TRUE(turn.status.ok()) << turn.status.error_message();
  EXPECT_THAT(turn.replies(), ElementsAre("Your shop is live."));
}

TEST_F(SessionServiceTest, ThePoIsToldWhatTheUserReceives) {
  Turn turn = Send("hello");
  ASSERT_TRUE(turn.status.ok()) << turn.status.error_message();
  auto agents = orchestrator::agents::v1::AgentService::NewStub(mesh_.channel());
  orchestrator::agents::v1::GetWorkerRequest req;
  req.set_worker_id(Session(turn.steps.front().accepted().session_id()).worker_id());
  orchestrator::agents::v1::GetWorkerResponse worker;
  ASSERT_TRUE(agents->GetWorker(TestMesh::Context(alice_).get(), req, &worker).ok());
  EXPECT_THAT(worker.worker().config().instructions(),
              HasSubstr("unless it is exactly your last `respond` message"));
}

// Ending a session ends its turns: the queued ones fail at once, the running
// one is cut off, and nothing brings the ended session back; the user's next
// message opens a new one, and the mesh still stops in bounded time.
TEST_F(SessionServiceTest, EndingASessionEndsItsQueuedAndRunningTurnsForGood) {
  Turn warm = Send("hello");  // the worker is up
  ASSERT_TRUE(warm.status.ok()) << warm.status.error_message();
  const std::string session_id = warm.steps.front().accepted().session_id();
  const std::string first_worker = Session(session_id).worker_id();
  auto running =
      std::make_unique<Stream>(*stub_, alice_, "wait 20 seconds", "end-running", absl::Seconds(60));
  ASSERT_TRUE(running->WaitFor(Running, absl::Seconds(30)));
  auto queued = std::make_unique<Stream>(*stub_, alice_, "what did i ask", "end-queued");
  ASSERT_TRUE(queued->WaitFor([](const auto& r) { return r.has_accepted(); }, absl::Seconds(10)));

  const absl::Time end = absl::Now();
  v1::EndSessionRequest req;
  req.set_session_id(session_id);
  v1::EndSessionResponse resp;
  ASSERT_TRUE(stub_->EndSession(TestMesh::Context(alice_).get(), req, &resp).ok());
  EXPECT_EQ(resp.session().state(), v1::SESSION_STATE_ENDED);

  bool ended = false;
  const Turn q = queued->Finish(absl::Seconds(10), &ended);
  ASSERT_TRUE(ended) << "the queued message's caller still waits";
  EXPECT_EQ(q.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(q.status.error_message(), HasSubstr("the session ended"));
  EXPECT_TRUE(q.replies().empty()) << "the queued message ran after the session ended";
  const Turn r = running->Finish(absl::Seconds(15), &ended);
  ASSERT_TRUE(ended) << "the running turn was not cut off";
  EXPECT_LT(absl::Now() - end, absl::Seconds(15)) << "the running turn ran on";
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(r.status.error_message(), HasSubstr("the session ended"));

  // It stays ended: no worker started for it, no state brought back.
  absl::SleepFor(absl::Seconds(2));
  const v1::Session after = Session(session_id);
  EXPECT_EQ(after.state(), v1::SESSION_STATE_ENDED);
  EXPECT_EQ(after.queued_messages(), 0);
  EXPECT_FALSE(after.turn_in_progress());
  EXPECT_EQ(after.worker_id(), first_worker);
  // The next message opens a new session, answered.
  Turn next = Send("what did i ask");
  ASSERT_TRUE(next.status.ok()) << next.status.error_message();
  EXPECT_NE(next.steps.front().accepted().session_id(), session_id);
  v1::ListSessionsResponse listed;
  ASSERT_TRUE(
      stub_->ListSessions(TestMesh::Context(alice_).get(), v1::ListSessionsRequest(), &listed)
          .ok());
  int open = 0;
  for (const auto& s : listed.sessions()) open += s.state() != v1::SESSION_STATE_ENDED;
  EXPECT_EQ(open, 1);
  EXPECT_EQ(Session(session_id).state(), v1::SESSION_STATE_ENDED);

  // Ended again with a turn running, and replaced by a new session at once:
  // the mesh still stops, in bounded time.
  const std::string second = next.steps.front().accepted().session_id();
  auto cut = std::make_unique<Stream>(*stub_, alice_, "wait 20 seconds", "end-again");
  ASSERT_TRUE(cut->WaitFor(Running, absl::Seconds(30)));
  req.set_session_id(second);
  ASSERT_TRUE(stub_->EndSession(TestMesh::Context(alice_).get(), req, &resp).ok());
  auto third = std::make_unique<Stream>(*stub_, alice_, "hello", "end-third");
  ASSERT_TRUE(third->WaitFor([](const auto& r) { return r.has_accepted(); }, absl::Seconds(10)));
  const absl::Time stop = absl::Now();
  mesh_.Stop();
  EXPECT_LT(absl::Now() - stop, absl::Seconds(20)) << "the mesh's stop waited for ended turns";
  cut->Finish(absl::Seconds(15), &ended);
  EXPECT_TRUE(ended);
  third->Finish(absl::Seconds(15), &ended);
  EXPECT_TRUE(ended);
}

// A retry of a message whose turn has just ended (its caller left, so the
// failure becomes a notification) gets how it ended: it never attaches to
// the finished turn and waits forever.
TEST_F(SessionServiceTest, ARetryRightAfterItsTurnEndedGetsTheOutcome) {
  Turn warm = Send("hello");
  ASSERT_TRUE(warm.status.ok()) << warm.status.error_message();
  const std::string worker = Session(warm.steps.front().accepted().session_id()).worker_id();
  ASSERT_FALSE(worker.empty());
  {
    Stream first(*stub_, alice_, "wait 20 seconds", "gap");
    ASSERT_TRUE(first.WaitFor(Running, absl::Seconds(30)));
    first.Cancel();  // the caller leaves: the turn goes on without a listener
    first.Finish(absl::Seconds(10));
  }
  absl::SleepFor(absl::Milliseconds(500));  // its Detach is done

  // The notification of the failure waits on the table while the turn,
  // ended in the store, is still the session's current one.
  auto pool = mesh_.database().NewPool(2);
  auto locker = pool->Acquire();
  ASSERT_TRUE(locker.ok());
  ASSERT_TRUE((*locker)
                  ->ExecScript("BEGIN; LOCK TABLE sessions.notifications IN ACCESS EXCLUSIVE MODE")
                  .ok());
  auto agents = orchestrator::agents::v1::AgentService::NewStub(mesh_.channel());
  orchestrator::agents::v1::StopWorkerRequest stop;
  stop.set_worker_id(worker);
  orchestrator::agents::v1::StopWorkerResponse stopped;
  ASSERT_TRUE(
      agents->StopWorker(TestMesh::Context(mesh_.admin_token()).get(), stop, &stopped).ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (true) {
    auto watcher = pool->Acquire();
    ASSERT_TRUE(watcher.ok());
    auto waiting = (*watcher)->ExecScript(
        "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE "
        "'%sessions.notifications%'");
    ASSERT_TRUE(waiting.ok());
    if (waiting->rows() > 0) break;
    ASSERT_LT(absl::Now(), deadline) << "the failed turn's notification never came";
    absl::SleepFor(absl::Milliseconds(50));
  }

  Stream retry(*stub_, alice_, "wait 20 seconds", "gap", absl::Seconds(20));
  bool ended = false;
  Turn again = retry.Finish(absl::Seconds(5), &ended);
  (void)(*locker)->ExecScript("ROLLBACK");
  if (!ended) again = retry.Finish(absl::Seconds(20), &ended);
  ASSERT_TRUE(ended);
  EXPECT_NE(again.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
      << "the retry attached to the ended turn and never heard its end";
  EXPECT_FALSE(again.status.ok()) << "the turn was cut off; its retry got: success";
  ASSERT_FALSE(again.steps.empty());
  EXPECT_TRUE(again.steps.front().has_accepted());
}

// WatchNotifications is filtered like every list: only an admin may name
// another owner.
TEST_F(SessionServiceTest, OnlyAnAdminWatchesAnotherOwnersNotifications) {
  ASSERT_TRUE(Send("start a demo job please").status.ok());
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + bob_);
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  v1::WatchNotificationsRequest req;
  req.set_owner_id(alice_id_);
  auto reader = stub_->WatchNotifications(&ctx, req);
  v1::WatchNotificationsResponse n;
  EXPECT_FALSE(reader->Read(&n)) << "bob watched: " << n.notification().text();
  const grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("owner_id"));

  // An admin may, and gets alice's.
  grpc::ClientContext admin;
  admin.AddMetadata("authorization", "Bearer " + mesh_.admin_token());
  admin.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  auto watched = stub_->WatchNotifications(&admin, req);
  ASSERT_TRUE(watched->Read(&n));
  EXPECT_EQ(n.notification().owner_id(), alice_id_);
  admin.TryCancel();
  watched->Finish();
}

TEST_F(SessionServiceTest, BadMessagesAreRefusedWithTheField) {
  Turn empty = Send("");
  EXPECT_EQ(empty.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(empty.status.error_message(), HasSubstr("text"));
}

}  // namespace
}  // namespace orchestrator::sessions
