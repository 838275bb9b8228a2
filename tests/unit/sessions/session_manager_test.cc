// The session manager against a mock AgentDriver (the agents component's
// contract) and a store in memory: what it asks of workers, as whom, and
// how a turn cut off by a shutdown or by the session ending ends.
#include "services/sessions/domain/session_manager.h"

#include <optional>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mocks/mock_agent_driver.h"
#include "tests/unit/sessions/in_memory_session_store.h"

namespace orchestrator::sessions {
namespace {

namespace av1 = ::orchestrator::agents::v1;
using ::testing::_;
using ::testing::HasSubstr;
using ::testing::Return;
using ::testing::StrictMock;

using OnEvent = std::function<void(const av1::AgentEvent&)>;

constexpr absl::Duration kWait = absl::Seconds(30);

av1::Worker WorkerIn(const std::string& id, av1::WorkerState state) {
  av1::Worker w;
  w.set_id(id);
  w.set_owner_id("u1");
  w.set_workspace_id("ws_" + id);
  w.set_state(state);
  return w;
}

av1::TaskResult Answer(const std::string& summary) {
  av1::TaskResult r;
  r.set_status(av1::TASK_STATUS_SUCCEEDED);
  r.set_summary(summary);
  r.set_agent_session_id("as_1");
  return r;
}

Principal User() {
  Principal p;
  p.user_id = "u1";
  p.user_name = "ann";
  return p;
}

// What a SendMessage caller hears.
class Heard {
 public:
  TurnListener Listener() {
    return {[this](const v1::SendMessageResponse& r) {
              absl::MutexLock lock(&mu_);
              if (r.has_reply()) replies_.push_back(r.reply().text());
            },
            [this](const absl::Status& s) {
              absl::MutexLock lock(&mu_);
              end_ = s;
            }};
  }
  absl::Status AwaitEnd() {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(
                             +[](std::optional<absl::Status>* e) { return e->has_value(); }, &end_),
                         kWait);
    return end_.value_or(absl::DeadlineExceededError("the turn never ended"));
  }
  std::vector<std::string> replies() {
    absl::MutexLock lock(&mu_);
    return replies_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> replies_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> end_ ABSL_GUARDED_BY(mu_);
};

// The notifications an owner receives.
// One of user u1's jobs ended.
JobEnd End(const std::string& job, const std::string& outcome, const std::string& kind = "",
           const std::string& started_because = "") {
  JobEnd end;
  end.owner_id = "u1";
  end.job_id = job;
  end.kind = kind;
  end.outcome = outcome;
  end.started_because = started_because;
  return end;
}

class Inbox {
 public:
  std::function<void(const v1::Notification&)> Callback() {
    return [this](const v1::Notification& n) {
      absl::MutexLock lock(&mu_);
      received_.push_back(n);
    };
  }
  std::optional<v1::Notification> AwaitFirst() {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(
        absl::Condition(
            +[](std::vector<v1::Notification>* r) { return !r->empty(); }, &received_),
        kWait);
    if (received_.empty()) return std::nullopt;
    return received_.front();
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::Notification> received_ ABSL_GUARDED_BY(mu_);
};

// Records what was done with a session's lock held: another thread takes
// every session's lock (Detach of no session does nothing else); when it
// cannot within the bound, the caller holds one. That thread is not joined
// there (the thread holding the lock may be the one asking); Held waits
// for all of them.
class SessionLockProbe {
 public:
  explicit SessionLockProbe(SessionManager* manager) : manager_(manager) {}

  // Whether the locks were free (false after the first time they were not).
  bool Check(const std::string& what) {
    auto taken = std::make_shared<absl::Notification>();
    {
      absl::MutexLock lock(&mu_);
      if (!held_.empty()) return false;  // one is enough: each would wait out the bound
      probes_.push_back(taken);
    }
    std::thread([manager = manager_, taken] {
      manager->Detach("no-such-session", 0);
      taken->Notify();
    }).detach();
    if (taken->WaitForNotificationWithTimeout(absl::Seconds(5))) return true;
    absl::MutexLock lock(&mu_);
    held_.push_back(what);
    return false;
  }

  // A listener that checks before each call, then tells `inner`.
  TurnListener Checked(TurnListener inner) {
    return {[this, inner](const v1::SendMessageResponse& r) {
              Check("a listener's on_step");
              inner.on_step(r);
            },
            [this, inner](const absl::Status& s) {
              Check("a listener's on_end");
              inner.on_end(s);
            }};
  }

  std::vector<std::string> Held() {
    std::vector<std::shared_ptr<absl::Notification>> probes;
    {
      absl::MutexLock lock(&mu_);
      probes = probes_;
    }
    for (auto& p : probes) p->WaitForNotification();
    absl::MutexLock lock(&mu_);
    return held_;
  }

 private:
  SessionManager* const manager_;
  absl::Mutex mu_;
  std::vector<std::string> held_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<absl::Notification>> probes_ ABSL_GUARDED_BY(mu_);
};

// Blocks a turn's RunTask until it is cut off, as the agents side does.
class BlockedTask {
 public:
  absl::StatusOr<av1::TaskResult> Run(Cancellation& cancel) {
    absl::Notification cut;
    if (cancel.Arm([&cut] { cut.Notify(); })) {
      running_.Notify();
      cut.WaitForNotification();
      cancel.Disarm();
    }
    return absl::CancelledError("the task was cancelled");
  }
  bool AwaitRunning() { return running_.WaitForNotificationWithTimeout(kWait); }

 private:
  absl::Notification running_;
};

class SessionManagerTest : public ::testing::Test {
 protected:
  SessionManagerTest() { Restart(); }

  // A new manager over the same store, as after a restart.
  void Restart() {
    manager_.reset();
    driver_ = std::make_shared<StrictMock<MockAgentDriver>>();
    manager_ = std::make_unique<SessionManager>(options_, store_, driver_);
  }

  absl::StatusOr<std::string> Send(const std::string& text, Heard& heard) {
    v1::SendMessageRequest req;
    req.set_text(text);
    req.set_request_id("req-" + text);
    std::string session_id;
    auto handle = manager_->Send(User(), req, heard.Listener(), &session_id);
    if (!handle.ok()) return handle.status();
    return session_id;
  }

  // Waits until the session's turns are over (its listeners hear the end
  // of a turn just before).
  void AwaitIdle(const std::string& session_id) {
    EXPECT_TRUE(store_->AwaitSession(
        session_id, [](const v1::Session& s) { return !s.turn_in_progress(); }, kWait));
  }

  // The next turn starts worker w1, which becomes ready.
  void ExpectANewWorker() {
    EXPECT_CALL(*driver_, Start("u1", _))
        .WillOnce(Return(WorkerIn("w1", av1::WORKER_STATE_STARTING)));
    EXPECT_CALL(*driver_, WaitUntilStarted("u1", "w1", _, _))
        .WillOnce(Return(WorkerIn("w1", av1::WORKER_STATE_READY)));
  }

  // The first message: a PO worker starts and answers it.
  std::string FirstTurn() {
    ExpectANewWorker();
    EXPECT_CALL(*driver_, RunTask("u1", _, _, _)).WillOnce(Return(Answer("hello, ann")));
    Heard heard;
    auto session = Send("hello", heard);
    EXPECT_TRUE(session.ok()) << session.status();
    EXPECT_TRUE(heard.AwaitEnd().ok());
    AwaitIdle(session.value_or(""));
    ::testing::Mock::VerifyAndClearExpectations(driver_.get());
    return session.value_or("");
  }

  // The next turn runs on the ready worker w1, which answers `answer`;
  // what it was asked lands in `*told`.
  void ExpectATurnOnTheWorker(const std::string& answer, av1::RunTaskRequest* told) {
    EXPECT_CALL(*driver_, Get("u1", "w1"))
        .WillOnce(Return(WorkerIn("w1", av1::WORKER_STATE_READY)));
    EXPECT_CALL(*driver_, RunTask("u1", _, _, _))
        .WillOnce([told, answer](const std::string&, const av1::RunTaskRequest& req, const OnEvent&,
                                 Cancellation&) -> absl::StatusOr<av1::TaskResult> {
          *told = req;
          return Answer(answer);
        });
  }

  // Fails unless every session's lock is free now: the manager never calls
  // the driver with one held (issue 13).
  void ExpectNoSessionLockHeld() {
    absl::Notification free;
    std::thread probe([&] {
      manager_->Detach("no-such-session", 0);
      free.Notify();
    });
    EXPECT_TRUE(free.WaitForNotificationWithTimeout(absl::Seconds(10)))
        << "the driver was called with a session's lock held";
    probe.join();
  }

  SessionManager::Options options_;
  std::shared_ptr<InMemorySessionStore> store_ = std::make_shared<InMemorySessionStore>();
  std::shared_ptr<StrictMock<MockAgentDriver>> driver_;
  std::unique_ptr<SessionManager> manager_;
};

TEST_F(SessionManagerTest, AMessageStartsAPoWorkerForItsOwnerWithTheOperatorEnvironment) {
  av1::StartWorkerRequest started;
  av1::RunTaskRequest ran;
  EXPECT_CALL(*driver_, Start("u1", _))
      .WillOnce([&](const std::string&, const av1::StartWorkerRequest& req) {
        started = req;
        return WorkerIn("w1", av1::WORKER_STATE_STARTING);
      });
  EXPECT_CALL(*driver_, WaitUntilStarted("u1", "w1", options_.worker_ready_timeout, _))
      .WillOnce(Return(WorkerIn("w1", av1::WORKER_STATE_READY)));
  EXPECT_CALL(*driver_, RunTask("u1", _, _, _))
      .WillOnce([&](const std::string&, const av1::RunTaskRequest& req, const OnEvent& on_event,
                    Cancellation&) -> absl::StatusOr<av1::TaskResult> {
        ExpectNoSessionLockHeld();
        ran = req;
        av1::AgentEvent e;
        e.mutable_session_started()->set_agent_session_id("as_1");
        on_event(e);
        return Answer("Your project is on its way.");
      });
  Heard heard;
  auto session = Send("build me a shop", heard);
  ASSERT_TRUE(session.ok()) << session.status();
  EXPECT_TRUE(heard.AwaitEnd().ok());
  EXPECT_THAT(heard.replies(), ::testing::ElementsAre("Your project is on its way."));

  EXPECT_TRUE(started.operator_environment());
  EXPECT_EQ(started.config().worker_type(), av1::WORKER_TYPE_PO);
  EXPECT_THAT(started.config().instructions(), HasSubstr("orchestrator respond"));
  EXPECT_FALSE(started.config().allowed_commands().empty());
  EXPECT_EQ(ran.worker_id(), "w1");
  EXPECT_EQ(ran.prompt(), "build me a shop");
  EXPECT_FALSE(ran.idempotency_key().empty());
  // The jobs the agent starts in this turn name the session and message.
  EXPECT_EQ(ran.origin(), absl::StrCat("session:", *session, ",message:", ran.idempotency_key()));
  auto stored = store_->GetSession(*session);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->worker_id(), "w1");
  EXPECT_EQ(stored->workspace_id(), "ws_w1");
  EXPECT_EQ(stored->agent_session_id(), "as_1");
}

TEST_F(SessionManagerTest, AWorkerThatFailsToStartEndsTheTurnWithItsReason) {
  EXPECT_CALL(*driver_, Start("u1", _))
      .WillOnce(Return(WorkerIn("w1", av1::WORKER_STATE_STARTING)));
  av1::Worker failed = WorkerIn("w1", av1::WORKER_STATE_FAILED);
  failed.set_state_reason("the runner never connected");
  EXPECT_CALL(*driver_, WaitUntilStarted("u1", "w1", _, _)).WillOnce(Return(failed));
  Heard heard;
  ASSERT_TRUE(Send("hello", heard).ok());
  absl::Status end = heard.AwaitEnd();
  EXPECT_EQ(end.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(end.message(), HasSubstr("the runner never connected"));
}

TEST_F(SessionManagerTest, AShutdownCutsOffARunningTurnWhichRunsAgainAfterTheRestart) {
  ExpectANewWorker();
  BlockedTask task;
  std::string first_key;
  EXPECT_CALL(*driver_, RunTask("u1", _, _, _))
      .WillOnce([&](const std::string&, const av1::RunTaskRequest& req, const OnEvent&,
                    Cancellation& cancel) {
        first_key = req.idempotency_key();
        return task.Run(cancel);
      });
  EXPECT_CALL(*driver_, Stop("u1", "w1", HasSubstr("shutting down")))
      .WillOnce([&](const std::string&, const std::string&, const std::string&) {
        ExpectNoSessionLockHeld();
        return WorkerIn("w1", av1::WORKER_STATE_STOPPED);
      });
  Heard heard;
  auto session = Send("deploy my shop", heard);
  ASSERT_TRUE(session.ok());
  ASSERT_TRUE(task.AwaitRunning());

  manager_->Shutdown(absl::Now());  // returns only once the turn has ended
  absl::Status end = heard.AwaitEnd();
  EXPECT_EQ(end.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(end.message(), HasSubstr("answered after the restart"));
  auto pending = store_->PendingTurns(*session);
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u) << "the message cut off is kept to run again";

  // After the restart: a new worker over the same workspace, the same
  // agent session, the same idempotency key; the answer is a notification.
  Restart();
  av1::StartWorkerRequest restarted;
  av1::RunTaskRequest rerun;
  EXPECT_CALL(*driver_, Start("u1", _))
      .WillOnce([&](const std::string&, const av1::StartWorkerRequest& req) {
        restarted = req;
        return WorkerIn("w2", av1::WORKER_STATE_STARTING);
      });
  EXPECT_CALL(*driver_, WaitUntilStarted("u1", "w2", _, _))
      .WillOnce(Return(WorkerIn("w2", av1::WORKER_STATE_READY)));
  EXPECT_CALL(*driver_, RunTask("u1", _, _, _))
      .WillOnce([&](const std::string&, const av1::RunTaskRequest& req, const OnEvent&,
                    Cancellation&) -> absl::StatusOr<av1::TaskResult> {
        rerun = req;
        return Answer("Deployed.");
      });
  ASSERT_TRUE(manager_->Recover().ok());
  Inbox inbox;
  ASSERT_TRUE(manager_->Watch(User(), {}, inbox.Callback()).ok());
  manager_->ResumeTurns();
  auto told = inbox.AwaitFirst();
  ASSERT_TRUE(told.has_value());
  EXPECT_EQ(told->kind(), v1::NOTIFICATION_KIND_REPLY);
  EXPECT_EQ(told->text(), "Deployed.");
  EXPECT_EQ(restarted.config().workspace_id(), "ws_w1");
  EXPECT_EQ(rerun.worker_id(), "w2");
  EXPECT_EQ(rerun.idempotency_key(), first_key);
  AwaitIdle(*session);
  manager_.reset();
  auto turn = store_->TurnOf((*pending)[0].message.id());
  ASSERT_TRUE(turn.ok());
  EXPECT_FALSE(turn->pending);
  EXPECT_TRUE(turn->outcome.ok());
}

TEST_F(SessionManagerTest, EndingTheSessionCutsOffItsRunningTurnForGood) {
  ExpectANewWorker();
  BlockedTask task;
  EXPECT_CALL(*driver_, RunTask("u1", _, _, _))
      .WillOnce([&](const std::string&, const av1::RunTaskRequest&, const OnEvent&,
                    Cancellation& cancel) { return task.Run(cancel); });
  EXPECT_CALL(*driver_, Stop("u1", "w1", "the session ended"))
      .WillOnce(Return(WorkerIn("w1", av1::WORKER_STATE_STOPPED)));
  Heard heard;
  auto session = Send("hello", heard);
  ASSERT_TRUE(session.ok());
  ASSERT_TRUE(task.AwaitRunning());

  auto ended = manager_->End(User(), *session);
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->state(), v1::SESSION_STATE_ENDED);
  absl::Status end = heard.AwaitEnd();
  EXPECT_EQ(end.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(end.message(), HasSubstr("the session ended"));
  manager_.reset();
  auto pending = store_->PendingTurns(*session);
  ASSERT_TRUE(pending.ok());
  EXPECT_TRUE(pending->empty()) << "an ended session's turns do not run again";
}

TEST_F(SessionManagerTest, APausedWorkerIsResumedForTheNextMessage) {
  const std::string session = FirstTurn();
  EXPECT_CALL(*driver_, Pause("u1", "w1")).WillOnce([&](const std::string&, const std::string&) {
    ExpectNoSessionLockHeld();
    return WorkerIn("w1", av1::WORKER_STATE_PAUSED);
  });
  auto paused = manager_->Pause(User(), session);
  ASSERT_TRUE(paused.ok()) << paused.status();
  EXPECT_EQ(paused->state(), v1::SESSION_STATE_PAUSED);

  EXPECT_CALL(*driver_, Get("u1", "w1")).WillOnce(Return(WorkerIn("w1", av1::WORKER_STATE_PAUSED)));
  EXPECT_CALL(*driver_, Resume("u1", "w1"))
      .WillOnce(Return(WorkerIn("w1", av1::WORKER_STATE_READY)));
  EXPECT_CALL(*driver_, RunTask("u1", _, _, _)).WillOnce(Return(Answer("Back.")));
  Heard heard;
  ASSERT_TRUE(Send("are you there", heard).ok());
  EXPECT_TRUE(heard.AwaitEnd().ok());
  EXPECT_THAT(heard.replies(), ::testing::ElementsAre("Back."));
  AwaitIdle(session);
}

TEST_F(SessionManagerTest, AnIdleSessionPausesItsWorker) {
  options_.idle_pause = absl::ZeroDuration();
  options_.monitor_interval = absl::Milliseconds(5);
  Restart();
  const std::string session = FirstTurn();
  absl::Notification paused;
  EXPECT_CALL(*driver_, Pause("u1", "w1")).WillOnce([&](const std::string&, const std::string&) {
    ExpectNoSessionLockHeld();
    paused.Notify();
    return WorkerIn("w1", av1::WORKER_STATE_PAUSED);
  });
  manager_->StartMonitor();
  ASSERT_TRUE(paused.WaitForNotificationWithTimeout(kWait));
  manager_.reset();
  auto stored = store_->GetSession(session);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->state(), v1::SESSION_STATE_PAUSED);
}

TEST_F(SessionManagerTest, AnAgentsRespondReachesTheSessionOfTheWorkerItsTokenBelongsTo) {
  const std::string session = FirstTurn();
  Inbox inbox;
  ASSERT_TRUE(manager_->Watch(User(), {}, inbox.Callback()).ok());
  Principal agent = User();
  agent.kind = PrincipalKind::kAgent;
  agent.worker_id = "w1";
  v1::RespondRequest req;
  req.set_text("Your shop is live.");
  auto m = manager_->Respond(agent, req);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->session_id(), session);
  auto told = inbox.AwaitFirst();
  ASSERT_TRUE(told.has_value());
  EXPECT_EQ(told->text(), "Your shop is live.");

  agent.worker_id = "w_someone_elses";
  EXPECT_EQ(manager_->Respond(agent, req).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SessionManagerTest, AQuestionWithChoicesKeepsThemOnTheReplyAndItsNotification) {
  FirstTurn();
  Inbox inbox;
  ASSERT_TRUE(manager_->Watch(User(), {}, inbox.Callback()).ok());
  Principal agent = User();
  agent.kind = PrincipalKind::kAgent;
  agent.worker_id = "w1";
  v1::RespondRequest req;
  req.set_text("Delete project shop?");
  req.add_choices("Yes, delete shop");
  req.add_choices("No");
  auto m = manager_->Respond(agent, req);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(m->choices(), ::testing::ElementsAre("Yes, delete shop", "No"));
  auto told = inbox.AwaitFirst();
  ASSERT_TRUE(told.has_value());
  EXPECT_THAT(told->choices(), ::testing::ElementsAre("Yes, delete shop", "No"));
  // A blank choice is no answer to pick.
  req.add_choices("  ");
  auto blank = manager_->Respond(agent, req);
  EXPECT_EQ(blank.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(blank.status().message(), HasSubstr("choices[2]"));
}

TEST_F(SessionManagerTest, AJobThatEndedIsToldToTheAgentOnceAndItsAnswerIsAJobUpdate) {
  const std::string session = FirstTurn();
  Inbox inbox;
  ASSERT_TRUE(manager_->Watch(User(), {}, inbox.Callback()).ok());
  av1::RunTaskRequest told_agent;
  ExpectATurnOnTheWorker("Your deploy failed; I am looking into it.", &told_agent);
  JobEnd failed = End("job_1", "failed", "deploy");
  failed.project_id = "prj_1";
  failed.error_message = "health gate failed: /healthz answered 500";
  manager_->OnJobEnded(failed);
  auto told = inbox.AwaitFirst();
  ASSERT_TRUE(told.has_value());
  EXPECT_EQ(told->kind(), v1::NOTIFICATION_KIND_JOB_UPDATE);
  EXPECT_EQ(told->job_id(), "job_1");
  EXPECT_EQ(told->text(), "Your deploy failed; I am looking into it.");
  EXPECT_THAT(told_agent.prompt(), HasSubstr("Job job_1 that you started failed"));
  // What it was and why it failed: the agent's next step depends on it.
  EXPECT_THAT(told_agent.prompt(), HasSubstr("It was a deploy job of project prj_1."));
  EXPECT_THAT(told_agent.prompt(), HasSubstr("> health gate failed: /healthz answered 500"));
  // What the agent starts now came of job_1, in the turn of its news.
  EXPECT_THAT(told_agent.origin(), HasSubstr(",job:job_1"));
  EXPECT_THAT(told_agent.origin(), HasSubstr(",message:msg_"));
  // The same end again (a repeated event) starts no other turn.
  manager_->OnJobEnded(failed);
  AwaitIdle(session);
}

TEST_F(SessionManagerTest, TheAgentHearsWhyThePlatformStartedAJobOnItsOwn) {
  const std::string session = FirstTurn();
  Inbox inbox;
  ASSERT_TRUE(manager_->Watch(User(), {}, inbox.Callback()).ok());
  av1::RunTaskRequest told_agent;
  ExpectATurnOnTheWorker("Your shop was rolled back.", &told_agent);
  manager_->OnJobEnded(
      End("job_2", "succeeded", "rollback", "release 2 failed 3 health checks in a row"));
  auto told = inbox.AwaitFirst();
  ASSERT_TRUE(told.has_value());
  EXPECT_EQ(told->text(), "Your shop was rolled back.");
  AwaitIdle(session);
  EXPECT_THAT(told_agent.prompt(), HasSubstr("rollback job job_2 on its own"));
  EXPECT_THAT(told_agent.prompt(), HasSubstr("release 2 failed 3 health checks in a row"));
}

TEST_F(SessionManagerTest, WithNoSessionOpenWhatThePlatformDidOnItsOwnIsANotificationOnce) {
  Inbox inbox;
  ASSERT_TRUE(manager_->Watch(User(), {}, inbox.Callback()).ok());
  // A job the user started, with no session to tell it in: nothing.
  manager_->OnJobEnded(End("job_1", "succeeded"));
  const JobEnd rollback =
      End("job_2", "succeeded", "rollback", "release 2 failed 3 health checks in a row");
  manager_->OnJobEnded(rollback);
  manager_->OnJobEnded(rollback);  // told twice (a restart's catch-up)
  auto told = inbox.AwaitFirst();
  ASSERT_TRUE(told.has_value());
  EXPECT_EQ(told->kind(), v1::NOTIFICATION_KIND_JOB_UPDATE);
  EXPECT_EQ(told->job_id(), "job_2");
  EXPECT_THAT(told->text(), HasSubstr("release 2 failed 3 health checks in a row"));
  EXPECT_THAT(told->text(), HasSubstr("It succeeded"));
  auto kept = store_->NotificationsAfter("u1", 0, 10);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->size(), 1u);
}

// An engineering run that gave up: its job FAILED asking for a human.
JobEnd NeedsHuman(const std::string& job, const std::string& message) {
  JobEnd end = End(job, "failed", "engineering");
  end.error_message = message;
  end.needs_human = true;
  return end;
}

TEST_F(SessionManagerTest, AJobAskingForAHumanIsToldToTheAgentWithItsError) {
  const std::string session = FirstTurn();
  Inbox inbox;
  ASSERT_TRUE(manager_->Watch(User(), {}, inbox.Callback()).ok());
  av1::RunTaskRequest told_agent;
  ExpectATurnOnTheWorker("The change needs you: its tests keep failing.", &told_agent);
  manager_->OnJobEnded(NeedsHuman(
      "job_3", "needs a human: tests still fail after 3 iterations\nLast output: FAILED (x=1)"));
  auto told = inbox.AwaitFirst();
  ASSERT_TRUE(told.has_value());
  EXPECT_EQ(told->kind(), v1::NOTIFICATION_KIND_JOB_UPDATE);
  EXPECT_EQ(told->text(), "The change needs you: its tests keep failing.");
  AwaitIdle(session);
  EXPECT_THAT(told_agent.prompt(), HasSubstr("Job job_3 that you started failed."));
  EXPECT_THAT(told_agent.prompt(), HasSubstr("cannot go on without the user"));
  EXPECT_THAT(told_agent.prompt(),
              HasSubstr("> needs a human: tests still fail after 3 iterations\n"
                        "> Last output: FAILED (x=1)"));
}

TEST_F(SessionManagerTest, WithNoSessionOpenAJobAskingForAHumanIsANotificationOnceWithItsError) {
  Inbox inbox;
  ASSERT_TRUE(manager_->Watch(User(), {}, inbox.Callback()).ok());
  // A plain failure, with no session to tell it in: nothing.
  JobEnd plain = End("job_1", "failed", "deploy");
  plain.error_message = "port 8080 is taken";
  manager_->OnJobEnded(plain);
  const JobEnd escalated = NeedsHuman(
      "job_2", "needs a human: tests still fail; Last output: " + std::string(5000, 'x'));
  manager_->OnJobEnded(escalated);
  manager_->OnJobEnded(escalated);  // told twice (a restart's catch-up)
  auto told = inbox.AwaitFirst();
  ASSERT_TRUE(told.has_value());
  EXPECT_EQ(told->kind(), v1::NOTIFICATION_KIND_JOB_UPDATE);
  EXPECT_EQ(told->job_id(), "job_2");
  EXPECT_THAT(told->text(),
              ::testing::StartsWith("Your engineering job job_2 failed: needs a human: tests "
                                    "still fail; Last output: xxx"));
  // The error is cut, not the news.
  EXPECT_LE(told->text().size(), 2200u);
  EXPECT_THAT(told->text(), ::testing::EndsWith("…"));
  auto kept = store_->NotificationsAfter("u1", 0, 10);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->size(), 1u);
}

TEST_F(SessionManagerTest, NoStoreWriteOrListenerCallHappensWithASessionsLockHeld) {
  SessionLockProbe probe(manager_.get());
  store_->OnWrite([&](const std::string& what) { probe.Check(what); });
  Principal agent = User();
  agent.kind = PrincipalKind::kAgent;
  agent.worker_id = "w1";
  ExpectANewWorker();
  EXPECT_CALL(*driver_, RunTask("u1", _, _, _))
      .WillOnce([&](const std::string&, const av1::RunTaskRequest&, const OnEvent& on_event,
                    Cancellation&) -> absl::StatusOr<av1::TaskResult> {
        av1::AgentEvent e;
        e.mutable_session_started()->set_agent_session_id("as_1");
        on_event(e);
        v1::RespondRequest respond;
        respond.set_text("On it.");
        respond.set_request_id("respond-1");
        EXPECT_TRUE(manager_->Respond(agent, respond).ok());
        return Answer("Done.");
      });
  Heard heard;
  v1::SendMessageRequest req;
  req.set_text("build me a shop");
  req.set_request_id("req-1");
  std::string session;
  ASSERT_TRUE(manager_->Send(User(), req, probe.Checked(heard.Listener()), &session).ok());
  EXPECT_TRUE(heard.AwaitEnd().ok());
  EXPECT_THAT(heard.replies(), ::testing::ElementsAre("On it.", "Done."));
  AwaitIdle(session);

  // Outside a turn the agent's word is a notification; then the session ends.
  Inbox inbox;
  ASSERT_TRUE(manager_->Watch(User(), {}, inbox.Callback()).ok());
  v1::RespondRequest later;
  later.set_text("Your shop is live.");
  ASSERT_TRUE(manager_->Respond(agent, later).ok());
  ASSERT_TRUE(inbox.AwaitFirst().has_value());
  EXPECT_CALL(*driver_, Stop("u1", "w1", "the session ended"))
      .WillOnce(Return(WorkerIn("w1", av1::WORKER_STATE_STOPPED)));
  ASSERT_TRUE(manager_->End(User(), session).ok());

  EXPECT_THAT(probe.Held(), ::testing::IsEmpty());
  auto stored = store_->GetSession(session);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->state(), v1::SESSION_STATE_ENDED);
  EXPECT_EQ(stored->agent_session_id(), "as_1");
}

}  // namespace
}  // namespace orchestrator::sessions
