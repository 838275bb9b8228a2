#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "services/common/auth/principal.h"
#include "services/common/executor/outbox.h"
#include "services/common/peers/agent_driver.h"
#include "services/sessions/domain/job_end.h"
#include "services/sessions/domain/session_store.h"

namespace orchestrator::sessions {

// What a SendMessage caller hears of its turn: the steps (acceptance,
// progress, the agent's events, the reply), then the end.
struct TurnListener {
  std::function<void(const v1::SendMessageResponse&)> on_step;
  std::function<void(const absl::Status&)> on_end;  // last call
};

// The session manager: one Product-Owner session per user, each with a PO
// worker (started on demand over the session's workspace) that takes one
// turn at a time; later messages queue in order. Idle sessions pause their
// worker, then end. After a restart the next message starts a new worker
// over the same workspace and resumes the same agent session. When one of
// the user's jobs ends, the agent is told in a turn of its own and its
// answer reaches the user as a notification.
//
// A call returns once what it changed is done outside too (the store, the
// listeners, notifications), in the order of the changes; none of it runs
// with a session's lock held.
class SessionManager {
 public:
  struct Options {
    agents::v1::AgentType agent_type = agents::v1::AGENT_TYPE_SCRIPTED;
    // The PO workers get the operator's environment (the model API's key
    // and address): the manager starts them with operator_environment.
    std::string instructions;  // the PO agent's standing instructions
    absl::Duration idle_pause = absl::Minutes(5);
    absl::Duration end_after = absl::Hours(24);
    absl::Duration worker_ready_timeout = absl::Seconds(60);
    absl::Duration monitor_interval = absl::Seconds(1);
    // What idle pauses and ends are measured with.
    std::function<absl::Time()> clock = &absl::Now;
  };

  SessionManager(Options options, std::shared_ptr<SessionStore> store, AgentDriverPtr agents);
  ~SessionManager();

  // After a restart: the open sessions' workers died with the old process;
  // the messages whose turns had not ended are queued again, in order.
  absl::Status Recover();
  // Runs the turns Recover queued; once the server serves (their workers
  // connect back to it).
  void ResumeTurns();
  void StartMonitor();
  // Refuses new messages (UNAVAILABLE) at once and starts no more turns;
  // running turns may end until `interrupt_at`, then are cut off. Every
  // message not answered stays pending and is run after the restart.
  void Shutdown(absl::Time interrupt_at = absl::InfinitePast());

  // Stores the message and queues its turn; the listener hears it out.
  // Returns a handle for Detach.
  absl::StatusOr<uint64_t> Send(const Principal& caller, const v1::SendMessageRequest& req,
                                TurnListener listener, std::string* session_id);
  // The caller left: the turn goes on, its reply becomes a notification.
  void Detach(const std::string& session_id, uint64_t handle);

  absl::StatusOr<v1::Session> Get(const Principal& caller, const std::string& session_id);
  absl::StatusOr<v1::ListSessionsResponse> List(const Principal& caller,
                                                const v1::ListSessionsRequest& req);
  absl::StatusOr<v1::Session> Pause(const Principal& caller, const std::string& session_id);
  absl::StatusOr<v1::Session> Resume(const Principal& caller, const std::string& session_id);
  absl::StatusOr<v1::Session> End(const Principal& caller, const std::string& session_id);
  absl::StatusOr<v1::SessionMessage> Respond(const Principal& caller,
                                             const v1::RespondRequest& req);

  // Notifications after `after_sequence`, then live ones; returns a handle.
  absl::StatusOr<uint64_t> Watch(const Principal& caller, const v1::WatchNotificationsRequest& req,
                                 std::function<void(const v1::Notification&)> on_notification);
  void Unwatch(uint64_t handle);

  // The mesh only (AdminService.ClearProjectState): the notifications about
  // these jobs are no longer replayed. Returns how many were dropped.
  absl::StatusOr<v1::DropJobNotificationsResponse> DropJobNotifications(
      const Principal& caller, const v1::DropJobNotificationsRequest& req);
  // The mesh only (JobService.ListProjectHistory): an owner's messages that
  // started jobs, each with its turn's usage, texts cut short.
  absl::StatusOr<v1::LookupMessagesResponse> LookupMessages(const Principal& caller,
                                                            const v1::LookupMessagesRequest& req);

  // One of a user's jobs ended (from the job events the mesh watches): the
  // user's PO agent is told in their open session. A job the platform
  // started on its own is told even with no session open, as a
  // notification.
  void OnJobEnded(const JobEnd& end);

  struct Turn;
  struct Delivery;
  // One session this process runs turns for. `mu` guards its state in
  // memory and is never held across a store call, a call to the agents or
  // a listener: what a change does outside is posted to `outbox` under
  // `mu` and applied after it, in order.
  struct Live {
    absl::Mutex mu;
    v1::Session session ABSL_GUARDED_BY(mu);
    std::deque<std::shared_ptr<Turn>> queue ABSL_GUARDED_BY(mu);
    std::shared_ptr<Turn> current ABSL_GUARDED_BY(mu);
    bool running ABSL_GUARDED_BY(mu) = false;
    // The worker the current turn runs on (or is starting), to cut it off.
    std::string worker_in_use ABSL_GUARDED_BY(mu);
    Outbox outbox;  // posted to with `mu` held, settled after it
    // Held (before mu, never inside it) around pausing or resuming the
    // session's worker and a turn getting it ready: a pause decided while no
    // turn ran never lands after a turn has found the worker ready.
    absl::Mutex worker_calls ABSL_ACQUIRED_BEFORE(mu);
    std::thread thread;
  };
  using Reply = std::shared_ptr<absl::StatusOr<v1::SessionMessage>>;

 private:
  absl::StatusOr<std::shared_ptr<Live>> Open(const std::string& owner_id, bool create);
  // Open's part under mu_: the retired sessions whose turn thread stopped
  // running go to `finished`, for Open to join.
  absl::StatusOr<std::shared_ptr<Live>> OpenLocked(const std::string& owner_id, bool create,
                                                   std::vector<std::shared_ptr<Live>>* finished)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::shared_ptr<Live>> Visible(const Principal& caller, const std::string& id);
  void EnqueueLocked(const std::shared_ptr<Live>& live, std::shared_ptr<Turn> turn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(live->mu);
  void RunTurns(std::shared_ptr<Live> live);
  absl::Status RunTurn(Live& live, const std::shared_ptr<Turn>& turn);
  absl::StatusOr<std::string> EnsureWorker(Live& live, Turn& turn);
  // Ends the turn of a message whose turn has ended already for `listener`:
  // the stored replies, then how the turn ended.
  void ReplayEnded(const MessageTurn& stored, TurnListener& listener);
  // Sends the replies stored so far in `turn` to a listener attaching to it
  // (an effect: `turn.delivered` is the outbox's).
  void ReplayReplies(Turn& turn, TurnListener& listener);
  static std::shared_ptr<Turn> TurnFrom(const MessageTurn& stored);
  // Posts storing one of the agent's replies in `turn` and sending it to
  // the turn's listeners, or as a notification when nobody listens; the
  // stored reply is in the result once the outbox is settled.
  // `choices`: the answers the agent offers (RespondRequest.choices).
  Reply PostReplyLocked(Live& live, const std::shared_ptr<Turn>& turn, const std::string& text,
                        const std::string& request_id,
                        const google::protobuf::RepeatedPtrField<std::string>& choices = {})
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(live.mu);
  // Posts `step` to the turn's listeners as they are now.
  static void PostStepLocked(Live& live, const Turn& turn, v1::SendMessageResponse step)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(live.mu);
  // Posts the end of the turn to its listeners as they are now.
  static void PostEndLocked(Live& live, const Turn& turn, absl::Status end)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(live.mu);
  // Posts that the message's turn ended with `outcome` in the store.
  void PostEndTurnLocked(Live& live, const std::string& message_id, absl::Status outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(live.mu);
  void Notify(v1::Notification n);
  // A stored notification to its owner's watchers.
  void Deliver(const v1::Notification& stored);
  // Posts saving the session as it is now.
  void SaveLocked(Live& live) ABSL_EXCLUSIVE_LOCKS_REQUIRED(live.mu);
  void MonitorLoop();

  const Options options_;
  std::shared_ptr<SessionStore> store_;
  AgentDriverPtr agents_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Live>> by_owner_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::shared_ptr<Delivery>> watchers_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> next_handle_{1};
  std::atomic<bool> stopping_{false};
  absl::Notification stop_monitor_;
  // Sessions Recover queued turns for; ResumeTurns starts them.
  std::vector<std::shared_ptr<Live>> recovered_ ABSL_GUARDED_BY(mu_);
  // Ended sessions a new one replaced in by_owner_ while their turn thread
  // still ran; Shutdown cuts and joins them (threads are never detached).
  std::vector<std::shared_ptr<Live>> retired_ ABSL_GUARDED_BY(mu_);
  std::thread monitor_;
};

}  // namespace orchestrator::sessions
