#include "services/sessions/domain/session_manager.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "clients/cli/skills.h"
#include "services/common/crypto/secret_box.h"
#include "services/common/pagination/page_budget.h"
#include "spdlog/spdlog.h"

namespace orchestrator::sessions {
namespace {

namespace av1 = ::orchestrator::agents::v1;
using google::protobuf::util::TimeUtil;

google::protobuf::Timestamp Now() {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(absl::Now()));
}

absl::Time TimeOf(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(t));
}

v1::SendMessageResponse Progress(v1::TurnStage stage, const std::string& message) {
  v1::SendMessageResponse r;
  r.mutable_progress()->set_stage(stage);
  r.mutable_progress()->set_message(message);
  return r;
}

const char kDefaultInstructions[] =
    "You are the user's Product-Owner agent on a platform that builds and runs their software. "
    "Act on the platform only through the `orchestrator` command line; answer the user plainly "
    "with what you did and what happens next.";

// What the user receives of a turn; part of every PO's instructions, since
// the session manager does exactly this.
const char kDeliveryRule[] =
    "Everything you say reaches the user, in order: each `orchestrator respond TEXT` as soon as "
    "you run it (use it to tell the user something while you keep working), then the text you "
    "end your turn with, unless it is exactly your last `respond` message, which is not sent "
    "twice. So end your turn with what the user should read last (your answer, or nothing new "
    "when a `respond` already said it), never with remarks about having answered.";

// Whether the closing text of a turn only repeats what the agent responded.
bool SameText(absl::string_view a, absl::string_view b) {
  return absl::StripAsciiWhitespace(a) == absl::StripAsciiWhitespace(b);
}

}  // namespace

struct SessionManager::Turn {
  std::string text;
  std::string job_id;  // set when the turn tells the agent a job ended
  std::map<uint64_t, TurnListener> listeners;
  bool responded = false;      // the agent ran `orchestrator respond` in this turn
  std::string last_responded;  // the text of the last one
  std::string message_id;
};

struct SessionManager::Live {
  absl::Mutex mu;
  v1::Session session ABSL_GUARDED_BY(mu);
  std::deque<std::shared_ptr<Turn>> queue ABSL_GUARDED_BY(mu);
  std::shared_ptr<Turn> current ABSL_GUARDED_BY(mu);
  bool running ABSL_GUARDED_BY(mu) = false;
  std::thread thread;
};

struct SessionManager::Delivery {
  absl::Mutex mu;
  std::string owner_id;
  int64_t last = 0;
  bool replaying = true;
  std::vector<v1::Notification> pending;
  std::function<void(const v1::Notification&)> on_notification;
};

SessionManager::SessionManager(Options options, std::shared_ptr<SessionStore> store,
                               std::shared_ptr<agents::WorkerSpawner> spawner)
    : options_(std::move(options)), store_(std::move(store)), spawner_(std::move(spawner)) {}

SessionManager::~SessionManager() { Shutdown(); }

Principal SessionManager::OwnerPrincipal(const std::string& owner_id) const {
  // The session manager acts for the owner inside the mesh; every call the
  // worker's token makes is still checked against the owner's role.
  Principal p;
  p.user_id = owner_id;
  p.kind = PrincipalKind::kUser;
  p.role_grants = cli::FindProfile("PRODUCT_OWNER")->grants;
  for (const char* g : {"session.respond", "runner.connect", "agent.task.finish", "agent.*"}) {
    p.role_grants.push_back(g);
  }
  return p;
}

absl::Status SessionManager::Recover() {
  auto open = store_->ListOpenSessions();
  if (!open.ok()) return open.status();
  for (auto& s : *open) {
    if (s.worker_id().empty() && !s.turn_in_progress()) continue;
    // Its worker ended with the old process; the next message starts another
    // over the same workspace and resumes the same agent session.
    s.clear_worker_id();
    s.set_turn_in_progress(false);
    s.set_queued_messages(0);
    s.set_state(v1::SESSION_STATE_PAUSED);
    s.set_state_reason("orchestratord restarted; the next message resumes the session");
    *s.mutable_update_time() = Now();
    if (auto st = store_->SaveSession(s); !st.ok()) return st;
  }
  return absl::OkStatus();
}

void SessionManager::StartMonitor() {
  if (!monitor_.joinable()) monitor_ = std::thread([this] { MonitorLoop(); });
}

void SessionManager::Shutdown() {
  stopping_ = true;
  if (monitor_.joinable()) monitor_.join();
  std::vector<std::shared_ptr<Live>> all;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [owner, l] : by_owner_) all.push_back(l);
  }
  for (auto& l : all) {
    if (l->thread.joinable()) l->thread.join();
  }
}

void SessionManager::Save(Live& live) {
  live.mu.AssertHeld();
  *live.session.mutable_update_time() = Now();
  if (auto s = store_->SaveSession(live.session); !s.ok()) {
    spdlog::warn("sessions: session {} not saved: {}", live.session.id(), s.ToString());
  }
}

absl::StatusOr<std::shared_ptr<SessionManager::Live>> SessionManager::Open(const std::string& owner,
                                                                           bool create) {
  absl::MutexLock lock(&mu_);
  auto it = by_owner_.find(owner);
  if (it != by_owner_.end()) {
    absl::MutexLock l(&it->second->mu);
    if (it->second->session.state() != v1::SESSION_STATE_ENDED) return it->second;
  }
  auto stored = store_->OpenSessionOf(owner);
  if (!stored.ok()) return stored.status();
  auto live = std::make_shared<Live>();
  if (stored->has_value()) {
    absl::MutexLock l(&live->mu);
    live->session = **stored;
  } else {
    if (!create) return absl::NotFoundError("you have no open session");
    v1::Session s;
    s.set_id(NewId("ses_"));
    s.set_owner_id(owner);
    s.set_state(v1::SESSION_STATE_ACTIVE);
    s.set_agent_type(options_.agent_type);
    *s.mutable_create_time() = Now();
    *s.mutable_update_time() = s.create_time();
    *s.mutable_last_activity_time() = s.create_time();
    if (auto st = store_->CreateSession(s); !st.ok()) return st;
    absl::MutexLock l(&live->mu);
    live->session = s;
  }
  if (it != by_owner_.end() && it->second->thread.joinable()) {
    // An ended session's turn thread is done with; let it go.
    it->second->thread.detach();
  }
  by_owner_[owner] = live;
  return live;
}

absl::StatusOr<std::shared_ptr<SessionManager::Live>> SessionManager::Visible(
    const Principal& caller, const std::string& id) {
  auto stored = store_->GetSession(id);
  if (!stored.ok() || !CanSeeOwner(caller, stored->owner_id())) {
    return absl::NotFoundError(absl::StrCat("session '", id, "' not found"));
  }
  if (stored->state() == v1::SESSION_STATE_ENDED) {
    return absl::FailedPreconditionError(absl::StrCat("session '", id, "' has ended"));
  }
  return Open(stored->owner_id(), false);
}

absl::StatusOr<uint64_t> SessionManager::Send(const Principal& caller,
                                              const v1::SendMessageRequest& req,
                                              TurnListener listener, std::string* session_id) {
  if (req.text().empty()) return absl::InvalidArgumentError("text: required");
  if (req.text().size() > 32 * 1024) return absl::InvalidArgumentError("text: at most 32 KiB");
  absl::StatusOr<std::shared_ptr<Live>> live =
      req.session_id().empty() ? Open(caller.user_id, true) : Visible(caller, req.session_id());
  if (!live.ok()) return live.status();
  std::shared_ptr<Live> l = *live;
  v1::SessionMessage message;
  {
    absl::MutexLock lock(&l->mu);
    *session_id = l->session.id();
    message.set_session_id(l->session.id());
  }
  message.set_id(NewId("msg_"));
  message.set_role(v1::MESSAGE_ROLE_USER);
  message.set_text(req.text());
  message.set_request_id(req.request_id());
  *message.mutable_create_time() = Now();
  bool created = false;
  auto stored = store_->AddMessage(message, &created);
  if (!stored.ok()) return stored.status();
  const uint64_t handle = next_handle_++;
  absl::MutexLock lock(&l->mu);
  if (!created) {
    // A retry: attach to the turn the first request queued, if still on.
    for (auto& t : l->queue) {
      if (t->message_id == stored->id()) {
        t->listeners.emplace(handle, std::move(listener));
        return handle;
      }
    }
    if (l->current && l->current->message_id == stored->id()) {
      l->current->listeners.emplace(handle, std::move(listener));
      return handle;
    }
    return absl::AlreadyExistsError(
        "request_id: this message was sent and answered already; its reply is among your "
        "notifications");
  }
  auto turn = std::make_shared<Turn>();
  turn->text = req.text();
  turn->message_id = stored->id();
  v1::SendMessageResponse accepted;
  accepted.mutable_accepted()->set_session_id(l->session.id());
  *accepted.mutable_accepted()->mutable_message() = *stored;
  accepted.mutable_accepted()->set_queue_position(
      static_cast<int32_t>(l->queue.size() + (l->current ? 1 : 0)));
  listener.on_step(accepted);
  turn->listeners.emplace(handle, std::move(listener));
  // Under the same lock as its queue position: no other message slips in.
  EnqueueLocked(l, std::move(turn));
  return handle;
}

void SessionManager::Detach(const std::string& session_id, uint64_t handle) {
  std::vector<std::shared_ptr<Live>> all;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [owner, l] : by_owner_) all.push_back(l);
  }
  for (auto& l : all) {
    absl::MutexLock lock(&l->mu);
    if (l->session.id() != session_id) continue;
    if (l->current) l->current->listeners.erase(handle);
    for (auto& t : l->queue) t->listeners.erase(handle);
  }
}

void SessionManager::Enqueue(const std::shared_ptr<Live>& live, std::shared_ptr<Turn> turn) {
  absl::MutexLock lock(&live->mu);
  EnqueueLocked(live, std::move(turn));
}

void SessionManager::EnqueueLocked(const std::shared_ptr<Live>& live, std::shared_ptr<Turn> turn) {
  live->mu.AssertHeld();
  live->queue.push_back(std::move(turn));
  live->session.set_queued_messages(static_cast<int32_t>(live->queue.size()));
  *live->session.mutable_last_activity_time() = Now();
  if (live->running) return Save(*live);
  live->running = true;
  Save(*live);
  if (live->thread.joinable()) live->thread.join();  // the last run has returned
  live->thread = std::thread([this, live] { RunTurns(live); });
}

void SessionManager::RunTurns(std::shared_ptr<Live> live) {
  while (true) {
    std::shared_ptr<Turn> turn;
    {
      absl::MutexLock lock(&live->mu);
      if (live->queue.empty() || stopping_) {
        live->current.reset();
        live->session.set_turn_in_progress(false);
        live->session.set_queued_messages(0);
        Save(*live);
        live->running = false;
        return;
      }
      turn = live->queue.front();
      live->queue.pop_front();
      live->current = turn;
      live->session.set_turn_in_progress(true);
      live->session.set_queued_messages(static_cast<int32_t>(live->queue.size()));
      Save(*live);
    }
    absl::Status s = RunTurn(*live, *turn);
    absl::MutexLock lock(&live->mu);
    for (auto& [h, l] : turn->listeners) l.on_end(s);
    if (!s.ok() && turn->listeners.empty()) {
      v1::Notification n;
      n.set_owner_id(live->session.owner_id());
      n.set_session_id(live->session.id());
      n.set_kind(v1::NOTIFICATION_KIND_SESSION);
      n.set_text(absl::StrCat("Your message could not be answered: ", s.message()));
      n.set_message_id(turn->message_id);
      live->mu.Unlock();
      Notify(std::move(n));
      live->mu.Lock();
    }
  }
}

absl::StatusOr<std::string> SessionManager::EnsureWorker(Live& live, Turn& turn) {
  std::string worker_id, owner;
  {
    absl::MutexLock lock(&live.mu);
    worker_id = live.session.worker_id();
    owner = live.session.owner_id();
  }
  const Principal principal = OwnerPrincipal(owner);
  if (!worker_id.empty()) {
    auto w = spawner_->Get(principal, worker_id);
    if (w.ok() && w->state() == av1::WORKER_STATE_PAUSED) {
      w = spawner_->Resume(principal, worker_id);
    }
    if (w.ok() && (w->state() == av1::WORKER_STATE_READY || w->state() == av1::WORKER_STATE_BUSY)) {
      return worker_id;
    }
  }
  for (auto& [h, l] : turn.listeners) {
    l.on_step(Progress(v1::TURN_STAGE_STARTING_WORKER, "starting your agent"));
  }
  av1::StartWorkerRequest req;
  auto* c = req.mutable_config();
  c->set_worker_type(av1::WORKER_TYPE_PO);
  {
    absl::MutexLock lock(&live.mu);
    c->set_agent_type(live.session.agent_type());
    c->set_workspace_id(live.session.workspace_id());
  }
  c->set_instructions(
      absl::StrCat(options_.instructions.empty() ? kDefaultInstructions : options_.instructions,
                   "\n\n", kDeliveryRule));
  for (const auto& g : cli::FindProfile("PRODUCT_OWNER")->grants) c->add_allowed_commands(g);
  // The operator's model credentials reach the sandbox's environment only,
  // never the worker's record the user can read.
  auto started = spawner_->Start(principal, req, {.operator_environment = true});
  if (!started.ok()) return started.status();
  // Wait until its runner is in.
  absl::Mutex mu;
  av1::Worker seen;
  bool done = false;
  auto handle = spawner_->Watch(principal, started->id(), [&](const av1::Worker& w) {
    absl::MutexLock lock(&mu);
    seen = w;
    done = w.state() != av1::WORKER_STATE_STARTING;
  });
  if (!handle.ok()) return handle.status();
  {
    absl::MutexLock lock(&mu);
    mu.AwaitWithTimeout(absl::Condition(&done), options_.worker_ready_timeout);
  }
  spawner_->Unwatch(started->id(), *handle);
  absl::MutexLock lock(&mu);
  if (seen.state() != av1::WORKER_STATE_READY) {
    return absl::UnavailableError(
        absl::StrCat("your agent did not start: ",
                     seen.state_reason().empty() ? "it took too long" : seen.state_reason()));
  }
  absl::MutexLock l(&live.mu);
  live.session.set_worker_id(seen.id());
  live.session.set_workspace_id(seen.workspace_id());
  live.session.set_state(v1::SESSION_STATE_ACTIVE);
  live.session.clear_state_reason();
  Save(live);
  return seen.id();
}

absl::Status SessionManager::RunTurn(Live& live, Turn& turn) {
  auto worker = EnsureWorker(live, turn);
  if (!worker.ok()) return worker.status();
  std::string owner, agent_session;
  {
    absl::MutexLock lock(&live.mu);
    owner = live.session.owner_id();
    agent_session = live.session.agent_session_id();
    for (auto& [h, l] : turn.listeners) l.on_step(Progress(v1::TURN_STAGE_RUNNING, "thinking"));
  }
  av1::RunTaskRequest req;
  req.set_worker_id(*worker);
  req.set_prompt(turn.text);
  req.set_agent_session_id(agent_session);
  absl::Notification finished;
  av1::TaskResult result;
  Live* l = &live;
  agents::TaskListener listener{[l, &turn](const av1::AgentEvent& e) {
                                  v1::SendMessageResponse r;
                                  *r.mutable_agent_event() = e;
                                  absl::MutexLock lock(&l->mu);
                                  for (auto& [h, t] : turn.listeners) t.on_step(r);
                                },
                                [&](const av1::TaskResult& r) {
                                  result = r;
                                  finished.Notify();
                                }};
  uint64_t handle = 0;
  auto task = spawner_->RunTask(OwnerPrincipal(owner), req, std::move(listener), &handle);
  if (!task.ok()) return task.status();
  finished.WaitForNotification();
  absl::MutexLock lock(&live.mu);
  *live.session.mutable_last_activity_time() = Now();
  if (!result.agent_session_id().empty())
    live.session.set_agent_session_id(result.agent_session_id());
  Save(live);
  if (result.status() != av1::TASK_STATUS_SUCCEEDED) {
    const std::string why =
        absl::StrCat("the agent's turn ended ", av1::TaskStatus_Name(result.status()).substr(12),
                     ": ", result.summary());
    return result.status() == av1::TASK_STATUS_TIMEOUT ? absl::DeadlineExceededError(why)
                                                       : absl::AbortedError(why);
  }
  // The closing text reaches the user after what the agent responded, unless
  // it only repeats the last of it.
  if (turn.responded && (absl::StripAsciiWhitespace(result.summary()).empty() ||
                         SameText(result.summary(), turn.last_responded))) {
    return absl::OkStatus();
  }
  auto delivered = DeliverLocked(live, turn, result.summary(), "");
  return delivered.ok() ? absl::OkStatus() : delivered.status();
}

absl::StatusOr<v1::SessionMessage> SessionManager::DeliverLocked(Live& live, Turn& turn,
                                                                 const std::string& text,
                                                                 const std::string& request_id) {
  live.mu.AssertHeld();
  v1::SessionMessage reply;
  reply.set_id(NewId("msg_"));
  reply.set_session_id(live.session.id());
  reply.set_role(v1::MESSAGE_ROLE_ASSISTANT);
  reply.set_text(text);
  reply.set_request_id(request_id);
  *reply.mutable_create_time() = Now();
  bool created = false;
  auto stored = store_->AddMessage(reply, &created);
  if (!stored.ok()) return stored.status();
  if (!created) return stored;  // a retried respond: delivered the first time
  if (!turn.listeners.empty() && turn.job_id.empty()) {
    v1::SendMessageResponse r;
    *r.mutable_reply() = *stored;
    for (auto& [h, t] : turn.listeners) t.on_step(r);
    return stored;
  }
  // Nobody is listening (the caller left, or the agent was told of a job):
  // the answer reaches the user as a notification.
  v1::Notification n;
  n.set_owner_id(live.session.owner_id());
  n.set_session_id(live.session.id());
  n.set_kind(turn.job_id.empty() ? v1::NOTIFICATION_KIND_REPLY : v1::NOTIFICATION_KIND_JOB_UPDATE);
  n.set_text(text);
  n.set_job_id(turn.job_id);
  n.set_message_id(turn.job_id.empty() ? turn.message_id : stored->id());
  live.mu.Unlock();
  Notify(std::move(n));
  live.mu.Lock();
  return stored;
}

void SessionManager::OnJobEnded(const std::string& owner_id, const std::string& job_id,
                                const std::string& outcome) {
  auto live = Open(owner_id, false);
  if (!live.ok()) return;  // no open session: nobody to tell through an agent
  auto turn = std::make_shared<Turn>();
  turn->job_id = job_id;
  turn->text = absl::StrCat("Job ", job_id, " that you started ", outcome,
                            ". Tell the user in one or two sentences.");
  Enqueue(*live, std::move(turn));
}

void SessionManager::Notify(v1::Notification n) {
  *n.mutable_create_time() = Now();
  auto stored = store_->AddNotification(n);
  if (!stored.ok()) {
    spdlog::warn("sessions: notification for {} not stored: {}", n.owner_id(),
                 stored.status().ToString());
    return;
  }
  std::vector<std::shared_ptr<Delivery>> to;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [h, d] : watchers_) {
      if (d->owner_id == stored->owner_id()) to.push_back(d);
    }
  }
  for (auto& d : to) {
    absl::MutexLock lock(&d->mu);
    if (d->replaying) {
      d->pending.push_back(*stored);
    } else if (stored->sequence() > d->last) {
      d->last = stored->sequence();
      d->on_notification(*stored);
    }
  }
}

absl::StatusOr<uint64_t> SessionManager::Watch(
    const Principal& caller, const v1::WatchNotificationsRequest& req,
    std::function<void(const v1::Notification&)> on_notification) {
  if (req.after_sequence() < 0) {
    return absl::InvalidArgumentError("after_sequence: must not be negative");
  }
  auto d = std::make_shared<Delivery>();
  d->owner_id = caller.admin && !req.owner_id().empty() ? req.owner_id() : caller.user_id;
  d->last = req.after_sequence();
  d->on_notification = std::move(on_notification);
  const uint64_t handle = next_handle_++;
  {
    absl::MutexLock lock(&mu_);
    watchers_[handle] = d;
  }
  // Replay what is stored, then what came meanwhile, in order, once each.
  while (true) {
    auto page = store_->NotificationsAfter(d->owner_id, d->last, 100);
    if (!page.ok()) {
      Unwatch(handle);
      return page.status();
    }
    absl::MutexLock lock(&d->mu);
    for (const auto& n : *page) {
      d->last = n.sequence();
      d->on_notification(n);
    }
    if (page->size() < 100) {
      for (const auto& n : d->pending) {
        if (n.sequence() > d->last) {
          d->last = n.sequence();
          d->on_notification(n);
        }
      }
      d->pending.clear();
      d->replaying = false;
      break;
    }
  }
  return handle;
}

void SessionManager::Unwatch(uint64_t handle) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(handle);
}

absl::StatusOr<v1::Session> SessionManager::Get(const Principal& caller, const std::string& id) {
  auto s = store_->GetSession(id);
  if (!s.ok() || !CanSeeOwner(caller, s->owner_id())) {
    return absl::NotFoundError(absl::StrCat("session '", id, "' not found"));
  }
  return s;
}

absl::StatusOr<v1::ListSessionsResponse> SessionManager::List(const Principal& caller,
                                                              const v1::ListSessionsRequest& req) {
  if (req.page_size() < 0) return absl::InvalidArgumentError("page_size: must not be negative");
  const int size = req.page_size() == 0 ? 50 : std::min(req.page_size(), 500);
  auto owner = OwnerFilter(caller, req.owner_id());
  if (!owner.ok()) return owner.status();
  auto rows = store_->ListSessions(*owner, req.state(), size + 1, req.page_token());
  if (!rows.ok()) return rows.status();
  v1::ListSessionsResponse resp;
  PageBudget budget;  // a page also stops at a byte budget
  const int n = std::min<int>(size, static_cast<int>(rows->size()));
  for (int i = 0; i < n && budget.Take((*rows)[i]); ++i) *resp.add_sessions() = (*rows)[i];
  if (static_cast<int>(rows->size()) > resp.sessions_size()) {
    resp.set_next_page_token(resp.sessions(resp.sessions_size() - 1).id());
  }
  return resp;
}

absl::StatusOr<v1::Session> SessionManager::Pause(const Principal& caller, const std::string& id) {
  auto live = Visible(caller, id);
  if (!live.ok()) return live.status();
  absl::MutexLock lock(&(*live)->mu);
  v1::Session& s = (*live)->session;
  if ((*live)->running) {
    return absl::FailedPreconditionError("a turn is in progress; pause after it");
  }
  if (!s.worker_id().empty()) {
    (void)spawner_->Pause(OwnerPrincipal(s.owner_id()), s.worker_id());
  }
  s.set_state(v1::SESSION_STATE_PAUSED);
  s.set_state_reason("paused");
  Save(**live);
  return s;
}

absl::StatusOr<v1::Session> SessionManager::Resume(const Principal& caller, const std::string& id) {
  auto live = Visible(caller, id);
  if (!live.ok()) return live.status();
  absl::MutexLock lock(&(*live)->mu);
  v1::Session& s = (*live)->session;
  if (!s.worker_id().empty()) {
    (void)spawner_->Resume(OwnerPrincipal(s.owner_id()), s.worker_id());
  }
  s.set_state(v1::SESSION_STATE_ACTIVE);
  s.clear_state_reason();
  *s.mutable_last_activity_time() = Now();
  Save(**live);
  return s;
}

absl::StatusOr<v1::Session> SessionManager::End(const Principal& caller, const std::string& id) {
  auto live = Visible(caller, id);
  if (!live.ok()) {
    if (absl::IsFailedPrecondition(live.status())) return Get(caller, id);  // ended already
    return live.status();
  }
  absl::MutexLock lock(&(*live)->mu);
  v1::Session& s = (*live)->session;
  if (!s.worker_id().empty()) {
    (void)spawner_->Stop(OwnerPrincipal(s.owner_id()), s.worker_id(), "the session ended");
  }
  s.set_state(v1::SESSION_STATE_ENDED);
  s.set_state_reason(
      absl::StrCat("ended by ", caller.user_name.empty() ? "the user" : caller.user_name));
  *s.mutable_end_time() = Now();
  Save(**live);
  return s;
}

absl::StatusOr<v1::SessionMessage> SessionManager::Respond(const Principal& caller,
                                                           const v1::RespondRequest& req) {
  if (req.text().empty()) return absl::InvalidArgumentError("text: required");
  if (req.text().size() > 32 * 1024) return absl::InvalidArgumentError("text: at most 32 KiB");
  std::shared_ptr<Live> live;
  if (!req.session_id().empty()) {
    auto l = Visible(caller, req.session_id());
    if (!l.ok()) return l.status();
    live = *l;
  } else {
    const std::string worker = spawner_->WorkerOfToken(caller.token_id);
    absl::MutexLock lock(&mu_);
    for (auto& [owner, l] : by_owner_) {
      absl::MutexLock ll(&l->mu);
      if (!worker.empty() && l->session.worker_id() == worker) live = l;
    }
    if (live == nullptr) {
      return absl::FailedPreconditionError(
          "session_id: required unless the caller is a session's agent");
    }
  }
  absl::MutexLock lock(&live->mu);
  if (live->current) {
    // Part of the turn in progress: it reaches the user now, in order with
    // the turn's other replies.
    std::shared_ptr<Turn> turn = live->current;
    turn->responded = true;
    turn->last_responded = req.text();
    return DeliverLocked(*live, *turn, req.text(), req.request_id());
  }
  v1::SessionMessage m;
  m.set_id(NewId("msg_"));
  m.set_session_id(live->session.id());
  m.set_role(v1::MESSAGE_ROLE_ASSISTANT);
  m.set_text(req.text());
  m.set_request_id(req.request_id());
  *m.mutable_create_time() = Now();
  bool created = false;
  auto stored = store_->AddMessage(m, &created);
  if (!stored.ok()) return stored.status();
  if (created) {
    v1::Notification n;
    n.set_owner_id(live->session.owner_id());
    n.set_session_id(live->session.id());
    n.set_kind(v1::NOTIFICATION_KIND_REPLY);
    n.set_text(req.text());
    n.set_message_id(stored->id());
    live->mu.Unlock();
    Notify(std::move(n));
    live->mu.Lock();
  }
  return stored;
}

void SessionManager::MonitorLoop() {
  while (!stopping_) {
    absl::SleepFor(options_.monitor_interval);
    std::vector<std::shared_ptr<Live>> all;
    {
      absl::MutexLock lock(&mu_);
      for (auto& [owner, l] : by_owner_) all.push_back(l);
    }
    const absl::Time now = absl::Now();
    for (auto& l : all) {
      absl::MutexLock lock(&l->mu);
      v1::Session& s = l->session;
      if (l->running || s.state() == v1::SESSION_STATE_ENDED) continue;
      const absl::Duration idle = now - TimeOf(s.last_activity_time());
      if (idle > options_.end_after) {
        if (!s.worker_id().empty()) {
          (void)spawner_->Stop(OwnerPrincipal(s.owner_id()), s.worker_id(), "the session ended");
        }
        s.set_state(v1::SESSION_STATE_ENDED);
        s.set_state_reason(absl::StrCat("ended after ", absl::FormatDuration(options_.end_after),
                                        " without messages"));
        *s.mutable_end_time() = Now();
        Save(*l);
      } else if (idle > options_.idle_pause && s.state() == v1::SESSION_STATE_ACTIVE) {
        if (!s.worker_id().empty()) {
          (void)spawner_->Pause(OwnerPrincipal(s.owner_id()), s.worker_id());
        }
        s.set_state(v1::SESSION_STATE_PAUSED);
        s.set_state_reason(absl::StrCat("idle for ", absl::FormatDuration(options_.idle_pause)));
        Save(*l);
      }
    }
  }
}

}  // namespace orchestrator::sessions
