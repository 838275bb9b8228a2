#pragma once

#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/sessions/domain/session_store.h"

namespace orchestrator::sessions {

// SessionStore in memory, as PgSessionStore behaves, for the manager's unit
// tests (a restart is a new manager over the same store).
class InMemorySessionStore final : public SessionStore {
 public:
  // Called with what is written (e.g. "SaveSession") before each write.
  void OnWrite(std::function<void(const std::string& what)> hook) {
    absl::MutexLock lock(&mu_);
    on_write_ = std::move(hook);
  }

  absl::StatusOr<std::optional<v1::Session>> OpenSessionOf(const std::string& owner_id) override {
    absl::MutexLock lock(&mu_);
    for (const auto& s : sessions_) {
      if (s.owner_id() == owner_id && s.state() != v1::SESSION_STATE_ENDED) return s;
    }
    return std::nullopt;
  }
  absl::Status CreateSession(const v1::Session& session) override {
    absl::MutexLock lock(&mu_);
    for (const auto& s : sessions_) {
      if (s.owner_id() == session.owner_id() && s.state() != v1::SESSION_STATE_ENDED) {
        return absl::AlreadyExistsError("the owner has an open session");
      }
    }
    sessions_.push_back(session);
    return absl::OkStatus();
  }
  absl::StatusOr<v1::Session> GetSession(const std::string& id) override {
    absl::MutexLock lock(&mu_);
    for (const auto& s : sessions_) {
      if (s.id() == id) return s;
    }
    return absl::NotFoundError(id);
  }
  absl::Status SaveSession(const v1::Session& session) override {
    Writing("SaveSession");
    absl::MutexLock lock(&mu_);
    for (auto& s : sessions_) {
      if (s.id() == session.id()) {
        s = session;
        return absl::OkStatus();
      }
    }
    return absl::NotFoundError(session.id());
  }
  absl::StatusOr<std::vector<v1::Session>> ListSessions(const std::string& owner_id,
                                                        v1::SessionState state, int limit,
                                                        const std::string& after_id) override {
    absl::MutexLock lock(&mu_);
    std::vector<v1::Session> out;
    bool after = after_id.empty();
    for (auto it = sessions_.rbegin(); it != sessions_.rend(); ++it) {
      if (!after) {
        after = it->id() == after_id;
        continue;
      }
      if (!owner_id.empty() && it->owner_id() != owner_id) continue;
      if (state != v1::SESSION_STATE_UNSPECIFIED && it->state() != state) continue;
      if (static_cast<int>(out.size()) == limit) break;
      out.push_back(*it);
    }
    return out;
  }
  absl::StatusOr<std::vector<v1::Session>> ListOpenSessions() override {
    absl::MutexLock lock(&mu_);
    std::vector<v1::Session> out;
    for (const auto& s : sessions_) {
      if (s.state() != v1::SESSION_STATE_ENDED) out.push_back(s);
    }
    return out;
  }

  absl::StatusOr<v1::SessionMessage> AddMessage(const v1::SessionMessage& message,
                                                bool* created) override {
    Writing("AddMessage");
    absl::MutexLock lock(&mu_);
    for (const auto& t : messages_) {
      if (!message.request_id().empty() && t.message.session_id() == message.session_id() &&
          t.message.request_id() == message.request_id()) {
        *created = false;
        return t.message;
      }
    }
    MessageTurn t;
    t.message = message;
    t.pending = message.role() != v1::MESSAGE_ROLE_ASSISTANT;
    messages_.push_back(t);
    *created = true;
    return message;
  }
  absl::StatusOr<std::vector<MessageTurn>> PendingTurns(const std::string& session_id) override {
    absl::MutexLock lock(&mu_);
    std::vector<MessageTurn> out;
    for (const auto& t : messages_) {
      if (t.message.session_id() == session_id && t.pending) out.push_back(t);
    }
    return out;
  }
  absl::StatusOr<MessageTurn> TurnOf(const std::string& message_id) override {
    absl::MutexLock lock(&mu_);
    MessageTurn* t = FindLocked(message_id);
    if (t == nullptr) return absl::NotFoundError(message_id);
    return *t;
  }
  absl::StatusOr<int> StartTurn(const std::string& message_id) override {
    Writing("StartTurn");
    absl::MutexLock lock(&mu_);
    MessageTurn* t = FindLocked(message_id);
    if (t == nullptr) return absl::NotFoundError(message_id);
    return ++t->attempts;
  }
  absl::Status EndTurn(const std::string& message_id, const absl::Status& outcome) override {
    Writing("EndTurn");
    absl::MutexLock lock(&mu_);
    MessageTurn* t = FindLocked(message_id);
    if (t == nullptr) return absl::NotFoundError(message_id);
    t->pending = false;
    t->outcome = outcome;
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<v1::SessionMessage>> RepliesTo(
      const std::string& message_id) override {
    absl::MutexLock lock(&mu_);
    std::vector<v1::SessionMessage> out;
    for (const auto& t : messages_) {
      if (t.message.reply_to_message_id() == message_id) out.push_back(t.message);
    }
    return out;
  }

  absl::Status AddTurnUsage(const std::string& message_id,
                            const agents::v1::Usage& usage) override {
    absl::MutexLock lock(&mu_);
    for (auto& t : messages_) {
      if (t.message.id() != message_id) continue;
      agents::v1::Usage* sum = t.message.mutable_turn_usage();
      sum->set_input_tokens(sum->input_tokens() + usage.input_tokens());
      sum->set_output_tokens(sum->output_tokens() + usage.output_tokens());
      sum->set_cache_read_tokens(sum->cache_read_tokens() + usage.cache_read_tokens());
      sum->set_cache_write_tokens(sum->cache_write_tokens() + usage.cache_write_tokens());
      sum->set_cost_usd_micros(sum->cost_usd_micros() + usage.cost_usd_micros());
      sum->set_turns(sum->turns() + usage.turns());
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<v1::SessionMessage>> MessagesOf(
      const std::string& owner_id, const std::vector<std::string>& ids) override {
    absl::MutexLock lock(&mu_);
    std::vector<v1::SessionMessage> out;
    for (const auto& t : messages_) {
      const bool owners = std::any_of(sessions_.begin(), sessions_.end(), [&](const auto& s) {
        return s.id() == t.message.session_id() && s.owner_id() == owner_id;
      });
      if (!owners) continue;
      if (std::find(ids.begin(), ids.end(), t.message.id()) != ids.end()) out.push_back(t.message);
    }
    return out;
  }

  absl::StatusOr<v1::Notification> AddNotification(v1::Notification notification) override {
    Writing("AddNotification");
    absl::MutexLock lock(&mu_);
    int64_t last = 0;
    for (const auto& n : notifications_) {
      if (n.owner_id() == notification.owner_id()) last = n.sequence();
    }
    notification.set_sequence(last + 1);
    notifications_.push_back(notification);
    return notification;
  }
  absl::StatusOr<std::optional<v1::Notification>> AddJobNotificationOnce(
      v1::Notification notification) override {
    {
      absl::MutexLock lock(&mu_);
      for (const auto& n : notifications_) {
        if (n.owner_id() == notification.owner_id() && n.job_id() == notification.job_id()) {
          return std::nullopt;
        }
      }
    }
    return AddNotification(std::move(notification));
  }
  absl::StatusOr<std::vector<v1::Notification>> NotificationsAfter(const std::string& owner_id,
                                                                   int64_t after_sequence,
                                                                   int limit) override {
    absl::MutexLock lock(&mu_);
    std::vector<v1::Notification> out;
    for (const auto& n : notifications_) {
      if (n.owner_id() != owner_id || n.sequence() <= after_sequence || n.text().empty()) continue;
      if (static_cast<int>(out.size()) == limit) break;
      out.push_back(n);
    }
    return out;
  }

  // A dropped notification keeps its sequence without its text.
  absl::StatusOr<int64_t> DropJobNotifications(const std::vector<std::string>& job_ids) override {
    absl::MutexLock lock(&mu_);
    int64_t dropped = 0;
    for (auto& n : notifications_) {
      if (n.text().empty() ||
          std::find(job_ids.begin(), job_ids.end(), n.job_id()) == job_ids.end()) {
        continue;
      }
      n.clear_text();
      ++dropped;
    }
    return dropped;
  }

  // Waits until session `id` as saved satisfies `ready`; whether it does.
  bool AwaitSession(const std::string& id, std::function<bool(const v1::Session&)> ready,
                    absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto saved = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const auto& s : sessions_) {
        if (s.id() == id) return ready(s);
      }
      return false;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&saved), timeout);
  }

 private:
  void Writing(const std::string& what) {
    std::function<void(const std::string&)> hook;
    {
      absl::MutexLock lock(&mu_);
      hook = on_write_;
    }
    if (hook) hook(what);
  }

  MessageTurn* FindLocked(const std::string& message_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (auto& t : messages_) {
      if (t.message.id() == message_id) return &t;
    }
    return nullptr;
  }

  absl::Mutex mu_;
  // Everything stored, in the order it was.
  std::vector<v1::Session> sessions_ ABSL_GUARDED_BY(mu_);
  std::vector<MessageTurn> messages_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::Notification> notifications_ ABSL_GUARDED_BY(mu_);
  std::function<void(const std::string&)> on_write_ ABSL_GUARDED_BY(mu_);
};

}  // namespace orchestrator::sessions
