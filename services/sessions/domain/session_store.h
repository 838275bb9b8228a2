#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "orchestrator/sessions/v1/sessions.pb.h"

namespace orchestrator::sessions {

// A message that starts a turn (the user's, or the platform's news of a job)
// and where its turn stands.
struct MessageTurn {
  v1::SessionMessage message;
  bool pending = true;   // its turn has not ended (queued, running, or cut off)
  int attempts = 0;      // how many times its turn started
  absl::Status outcome;  // once ended: OK (answered) or why it failed
};

// Where sessions, messages and notifications are kept.
class SessionStore {
 public:
  virtual ~SessionStore() = default;

  // The owner's open (ACTIVE or PAUSED) session, if any.
  virtual absl::StatusOr<std::optional<v1::Session>> OpenSessionOf(const std::string& owner_id) = 0;
  // Inserts; ALREADY_EXISTS when the owner has an open session already.
  virtual absl::Status CreateSession(const v1::Session& session) = 0;
  virtual absl::StatusOr<v1::Session> GetSession(const std::string& id) = 0;
  virtual absl::Status SaveSession(const v1::Session& session) = 0;
  virtual absl::StatusOr<std::vector<v1::Session>> ListSessions(const std::string& owner_id,
                                                                v1::SessionState state, int limit,
                                                                const std::string& after_id) = 0;
  virtual absl::StatusOr<std::vector<v1::Session>> ListOpenSessions() = 0;

  // Inserts a message; with a request_id already used in the session,
  // returns the message that request stored (and `*created` is false). A
  // user's or the platform's message is stored pending until EndTurn.
  virtual absl::StatusOr<v1::SessionMessage> AddMessage(const v1::SessionMessage& message,
                                                        bool* created) = 0;

  // The session's pending messages, in the order they were sent.
  virtual absl::StatusOr<std::vector<MessageTurn>> PendingTurns(const std::string& session_id) = 0;
  // The turn of one message (NOT_FOUND if no such message).
  virtual absl::StatusOr<MessageTurn> TurnOf(const std::string& message_id) = 0;
  // Its turn starts (again); returns how many times it has started.
  virtual absl::StatusOr<int> StartTurn(const std::string& message_id) = 0;
  // Its turn ended: answered (OK) or failed with `outcome`; no longer pending.
  virtual absl::Status EndTurn(const std::string& message_id, const absl::Status& outcome) = 0;
  // The agent's replies in a message's turn, in order.
  virtual absl::StatusOr<std::vector<v1::SessionMessage>> RepliesTo(
      const std::string& message_id) = 0;
  // Adds the model usage of (one run of) a message's turn to its
  // turn_usage.
  virtual absl::Status AddTurnUsage(const std::string& message_id,
                                    const agents::v1::Usage& usage) = 0;
  // The owner's messages among `ids`, in no particular order; others' are
  // left out.
  virtual absl::StatusOr<std::vector<v1::SessionMessage>> MessagesOf(
      const std::string& owner_id, const std::vector<std::string>& ids) = 0;

  // Appends a notification, numbering it after the owner's last one.
  virtual absl::StatusOr<v1::Notification> AddNotification(v1::Notification notification) = 0;
  // The same, unless the owner has a notification about its job_id already
  // (then nullopt): a job's end told twice is kept once.
  virtual absl::StatusOr<std::optional<v1::Notification>> AddJobNotificationOnce(
      v1::Notification notification) = 0;
  virtual absl::StatusOr<std::vector<v1::Notification>> NotificationsAfter(
      const std::string& owner_id, int64_t after_sequence, int limit) = 0;
  // Drops the notifications about these jobs (job ids hold no spaces): no
  // longer replayed, their sequences never reused. Returns how many.
  virtual absl::StatusOr<int64_t> DropJobNotifications(const std::vector<std::string>& job_ids) = 0;
};

}  // namespace orchestrator::sessions
