#pragma once

#include "services/common/db/migrations.h"
#include "services/common/db/pool.h"
#include "services/sessions/domain/session_store.h"

namespace orchestrator::db {
// The sessions schema's migrations (store/migrations), embedded at build time.
const MigrationSet& SessionsMigrations();
}  // namespace orchestrator::db

namespace orchestrator::sessions {

// SessionStore on PostgreSQL (schema `sessions`).
class PgSessionStore final : public SessionStore {
 public:
  explicit PgSessionStore(db::PoolPtr pool) : pool_(std::move(pool)) {}

  absl::StatusOr<std::optional<v1::Session>> OpenSessionOf(const std::string& owner_id) override;
  absl::Status CreateSession(const v1::Session& session) override;
  absl::StatusOr<v1::Session> GetSession(const std::string& id) override;
  absl::Status SaveSession(const v1::Session& session) override;
  absl::StatusOr<std::vector<v1::Session>> ListSessions(const std::string& owner_id,
                                                        v1::SessionState state, int limit,
                                                        const std::string& after_id) override;
  absl::StatusOr<std::vector<v1::Session>> ListOpenSessions() override;
  absl::StatusOr<v1::SessionMessage> AddMessage(const v1::SessionMessage& message,
                                                bool* created) override;
  absl::StatusOr<std::vector<MessageTurn>> PendingTurns(const std::string& session_id) override;
  absl::StatusOr<MessageTurn> TurnOf(const std::string& message_id) override;
  absl::StatusOr<int> StartTurn(const std::string& message_id) override;
  absl::Status EndTurn(const std::string& message_id, const absl::Status& outcome) override;
  absl::StatusOr<std::vector<v1::SessionMessage>> RepliesTo(const std::string& message_id) override;
  absl::Status AddTurnUsage(const std::string& message_id, const agents::v1::Usage& usage) override;
  absl::StatusOr<std::vector<v1::SessionMessage>> MessagesOf(
      const std::string& owner_id, const std::vector<std::string>& ids) override;
  absl::StatusOr<v1::Notification> AddNotification(v1::Notification notification) override;
  absl::StatusOr<std::optional<v1::Notification>> AddJobNotificationOnce(
      v1::Notification notification) override;
  absl::StatusOr<std::vector<v1::Notification>> NotificationsAfter(const std::string& owner_id,
                                                                   int64_t after_sequence,
                                                                   int limit) override;
  absl::StatusOr<int64_t> DropJobNotifications(const std::vector<std::string>& job_ids) override;

 private:
  db::PoolPtr pool_;
};

}  // namespace orchestrator::sessions
