#include "services/sessions/store/pg_session_store.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/common/db/proto_json.h"

namespace orchestrator::sessions {
namespace {

using db::FromJsonColumn;
using db::FromJsonRows;
using db::ToJsonColumn;

constexpr db::Statement kOpenOf{
    "sessions_open_of", "SELECT session FROM sessions.sessions WHERE owner_id = $1 AND state <> 3"};
constexpr db::Statement kCreate{
    "sessions_create",
    "INSERT INTO sessions.sessions (id, owner_id, state, session) VALUES ($1, $2, $3::int, "
    "$4::jsonb) ON CONFLICT (owner_id) WHERE state <> 3 DO NOTHING"};
constexpr db::Statement kGet{"sessions_get", "SELECT session FROM sessions.sessions WHERE id = $1"};
constexpr db::Statement kSave{
    "sessions_save",
    "UPDATE sessions.sessions SET session = $2::jsonb, state = $3::int WHERE id = $1"};
// Newest first; $1 owner ('' = all), $2 state (0 = any), $3 the previous
// page's last id ('' on the first page).
constexpr db::Statement kList{
    "sessions_list",
    "SELECT session FROM sessions.sessions WHERE ($1 = '' OR owner_id = $1) "
    "AND ($2::int = 0 OR state = $2::int) AND ($3 = '' OR (create_time, id) < "
    "(SELECT create_time, id FROM sessions.sessions WHERE id = $3)) "
    "ORDER BY create_time DESC, id DESC LIMIT $4"};
constexpr db::Statement kListOpen{"sessions_list_open",
                                  "SELECT session FROM sessions.sessions WHERE state <> 3"};
constexpr db::Statement kAddMessage{
    "sessions_message_add",
    "INSERT INTO sessions.messages (id, session_id, request_id, message, pending, reply_to) "
    "VALUES ($1, $2, $3, $4::jsonb, $5::boolean, $6) ON CONFLICT (session_id, request_id) WHERE "
    "request_id IS NOT NULL DO NOTHING RETURNING message"};
constexpr db::Statement kPendingTurns{
    "sessions_turns_pending",
    "SELECT message, pending, attempts, outcome_code, outcome_message FROM sessions.messages "
    "WHERE session_id = $1 AND pending ORDER BY seq"};
constexpr db::Statement kTurnOf{
    "sessions_turn_of",
    "SELECT message, pending, attempts, outcome_code, outcome_message FROM sessions.messages "
    "WHERE id = $1"};
constexpr db::Statement kStartTurn{
    "sessions_turn_start",
    "UPDATE sessions.messages SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts"};
constexpr db::Statement kEndTurn{
    "sessions_turn_end",
    "UPDATE sessions.messages SET pending = false, outcome_code = $2::int, outcome_message = $3 "
    "WHERE id = $1"};
constexpr db::Statement kRepliesTo{
    "sessions_replies_to",
    "SELECT message FROM sessions.messages WHERE reply_to = $1 ORDER BY seq"};
// Adds $2 (a Usage as JSON) to the message's turnUsage, field by field,
// each saturating at its type's largest value (turns is an int32).
constexpr db::Statement kAddTurnUsage{
    "sessions_turn_usage_add",
    "UPDATE sessions.messages m SET message = jsonb_set(m.message, '{turnUsage}', (SELECT "
    "coalesce(jsonb_object_agg(k, LEAST(coalesce((m.message->'turnUsage'->>k)::numeric, 0) + "
    "coalesce(($2::jsonb->>k)::numeric, 0), CASE WHEN k = 'turns' THEN 2147483647 ELSE "
    "9223372036854775807 END)::bigint), '{}'::jsonb) FROM (SELECT jsonb_object_keys("
    "coalesce(m.message->'turnUsage', '{}'::jsonb)) UNION SELECT jsonb_object_keys($2::jsonb)) "
    "AS keys(k))) WHERE m.id = $1"};
constexpr db::Statement kMessagesOf{
    "sessions_messages_of",
    "SELECT m.message FROM sessions.messages m JOIN sessions.sessions s ON s.id = m.session_id "
    "WHERE s.owner_id = $1 AND m.id = ANY($2::text[])"};
constexpr db::Statement kMessageByRequest{
    "sessions_message_by_request",
    "SELECT message FROM sessions.messages WHERE session_id = $1 AND request_id = $2"};
// The next sequence of the owner's notifications; a concurrent insert of the
// same number loses on the primary key and is retried.
constexpr db::Statement kAddNotification{
    "sessions_notification_add",
    "INSERT INTO sessions.notifications (owner_id, sequence, notification) "
    "SELECT $1, q.s, jsonb_set($2::jsonb, '{sequence}', to_jsonb(q.s::text)) FROM "
    "(SELECT coalesce(max(sequence), 0) + 1 AS s FROM sessions.notifications WHERE owner_id = $1) "
    "q "
    "RETURNING sequence"};
constexpr db::Statement kAddJobNotificationOnce{
    "sessions_notification_add_job_once",
    "INSERT INTO sessions.notifications (owner_id, sequence, notification) "
    "SELECT $1, q.s, jsonb_set($2::jsonb, '{sequence}', to_jsonb(q.s::text)) FROM "
    "(SELECT coalesce(max(sequence), 0) + 1 AS s FROM sessions.notifications WHERE owner_id = $1) "
    "q WHERE NOT EXISTS (SELECT 1 FROM sessions.notifications WHERE owner_id = $1 AND "
    "notification->>'jobId' = $3) "
    "RETURNING sequence"};
constexpr db::Statement kNotificationsAfter{
    "sessions_notifications_after",
    "SELECT notification FROM sessions.notifications WHERE owner_id = $1 AND sequence > $2 "
    "AND NOT dropped ORDER BY sequence LIMIT $3"};
// $1: job ids separated by spaces (ids are tokens: they hold none).
constexpr db::Statement kDropJobNotifications{
    "sessions_notifications_drop_jobs",
    "UPDATE sessions.notifications SET dropped = true, notification = notification - 'text' "
    "WHERE notification->>'jobId' = ANY(string_to_array($1, ' ')) AND NOT dropped"};

}  // namespace

absl::StatusOr<std::optional<v1::Session>> PgSessionStore::OpenSessionOf(const std::string& owner) {
  auto r = pool_->Exec(kOpenOf, {owner});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::optional<v1::Session>();
  auto s = FromJsonColumn<v1::Session>(r->Get(0, 0));
  if (!s.ok()) return s.status();
  return std::optional<v1::Session>(std::move(*s));
}

absl::Status PgSessionStore::CreateSession(const v1::Session& s) {
  auto r = pool_->Exec(kCreate, {s.id(), s.owner_id(), std::to_string(s.state()), ToJsonColumn(s)});
  if (!r.ok()) return r.status();
  if (r->affected() == 0) return absl::AlreadyExistsError("the user has an open session already");
  return absl::OkStatus();
}

absl::StatusOr<v1::Session> PgSessionStore::GetSession(const std::string& id) {
  auto r = pool_->Exec(kGet, {id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return absl::NotFoundError(absl::StrCat("session '", id, "' not found"));
  return FromJsonColumn<v1::Session>(r->Get(0, 0));
}

absl::Status PgSessionStore::SaveSession(const v1::Session& s) {
  auto r = pool_->Exec(kSave, {s.id(), ToJsonColumn(s), std::to_string(s.state())});
  return r.ok() ? absl::OkStatus() : r.status();
}

absl::StatusOr<std::vector<v1::Session>> PgSessionStore::ListSessions(const std::string& owner,
                                                                      v1::SessionState state,
                                                                      int limit,
                                                                      const std::string& after_id) {
  auto r = pool_->Exec(kList, {owner, std::to_string(state), after_id, std::to_string(limit)});
  if (!r.ok()) return r.status();
  return FromJsonRows<v1::Session>(*r);
}

absl::StatusOr<std::vector<v1::Session>> PgSessionStore::ListOpenSessions() {
  auto r = pool_->Exec(kListOpen, {});
  if (!r.ok()) return r.status();
  return FromJsonRows<v1::Session>(*r);
}

absl::StatusOr<v1::SessionMessage> PgSessionStore::AddMessage(const v1::SessionMessage& m,
                                                              bool* created) {
  const bool pending = m.role() != v1::MESSAGE_ROLE_ASSISTANT;
  auto r = pool_->Exec(kAddMessage,
                       {m.id(), m.session_id(), db::NullIfEmpty(m.request_id()), ToJsonColumn(m),
                        pending ? "true" : "false", db::NullIfEmpty(m.reply_to_message_id())});
  if (!r.ok()) return r.status();
  *created = r->rows() == 1;
  if (*created) return m;
  auto earlier = pool_->Exec(kMessageByRequest, {m.session_id(), m.request_id()});
  if (!earlier.ok()) return earlier.status();
  if (earlier->rows() != 1)
    return absl::AbortedError("concurrent message with the same request_id");
  return FromJsonColumn<v1::SessionMessage>(earlier->Get(0, 0));
}

namespace {

absl::StatusOr<MessageTurn> TurnAt(const db::Result& r, int row) {
  MessageTurn t;
  auto m = FromJsonColumn<v1::SessionMessage>(r.Get(row, 0));
  if (!m.ok()) return m.status();
  t.message = std::move(*m);
  t.pending = r.Get(row, 1) == "t";
  t.attempts = static_cast<int>(r.GetInt64(row, 2));
  if (!r.IsNull(row, 3)) {
    t.outcome = absl::Status(static_cast<absl::StatusCode>(r.GetInt64(row, 3)), r.Get(row, 4));
  }
  return t;
}

}  // namespace

absl::StatusOr<std::vector<MessageTurn>> PgSessionStore::PendingTurns(
    const std::string& session_id) {
  auto r = pool_->Exec(kPendingTurns, {session_id});
  if (!r.ok()) return r.status();
  std::vector<MessageTurn> out;
  for (int i = 0; i < r->rows(); ++i) {
    auto t = TurnAt(*r, i);
    if (!t.ok()) return t.status();
    out.push_back(std::move(*t));
  }
  return out;
}

absl::StatusOr<MessageTurn> PgSessionStore::TurnOf(const std::string& message_id) {
  auto r = pool_->Exec(kTurnOf, {message_id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) {
    return absl::NotFoundError(absl::StrCat("message '", message_id, "' not found"));
  }
  return TurnAt(*r, 0);
}

absl::StatusOr<int> PgSessionStore::StartTurn(const std::string& message_id) {
  auto r = pool_->Exec(kStartTurn, {message_id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) {
    return absl::NotFoundError(absl::StrCat("message '", message_id, "' not found"));
  }
  return static_cast<int>(r->GetInt64(0, 0));
}

absl::Status PgSessionStore::EndTurn(const std::string& message_id, const absl::Status& outcome) {
  auto r = pool_->Exec(kEndTurn, {message_id, std::to_string(static_cast<int>(outcome.code())),
                                  std::string(outcome.message())});
  return r.ok() ? absl::OkStatus() : r.status();
}

absl::StatusOr<std::vector<v1::SessionMessage>> PgSessionStore::RepliesTo(
    const std::string& message_id) {
  auto r = pool_->Exec(kRepliesTo, {message_id});
  if (!r.ok()) return r.status();
  return FromJsonRows<v1::SessionMessage>(*r);
}

absl::Status PgSessionStore::AddTurnUsage(const std::string& message_id,
                                          const agents::v1::Usage& usage) {
  auto r = pool_->Exec(kAddTurnUsage, {message_id, ToJsonColumn(usage)});
  return r.status();
}

absl::StatusOr<std::vector<v1::SessionMessage>> PgSessionStore::MessagesOf(
    const std::string& owner_id, const std::vector<std::string>& ids) {
  auto r = pool_->Exec(kMessagesOf, {owner_id, db::TextArray(ids)});
  if (!r.ok()) return r.status();
  return FromJsonRows<v1::SessionMessage>(*r);
}

absl::StatusOr<v1::Notification> PgSessionStore::AddNotification(v1::Notification n) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto r = pool_->Exec(kAddNotification, {n.owner_id(), ToJsonColumn(n)});
    if (r.ok()) {
      n.set_sequence(r->GetInt64(0, 0));
      return n;
    }
    if (!absl::IsAlreadyExists(r.status()) && !absl::IsAborted(r.status())) return r.status();
  }
  return absl::AbortedError("notification sequence kept colliding");
}

absl::StatusOr<std::optional<v1::Notification>> PgSessionStore::AddJobNotificationOnce(
    v1::Notification n) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto r = pool_->Exec(kAddJobNotificationOnce, {n.owner_id(), ToJsonColumn(n), n.job_id()});
    if (r.ok()) {
      if (r->rows() == 0) return std::nullopt;
      n.set_sequence(r->GetInt64(0, 0));
      return n;
    }
    if (!absl::IsAlreadyExists(r.status()) && !absl::IsAborted(r.status())) return r.status();
  }
  return absl::AbortedError("notification sequence kept colliding");
}

absl::StatusOr<std::vector<v1::Notification>> PgSessionStore::NotificationsAfter(
    const std::string& owner, int64_t after, int limit) {
  auto r = pool_->Exec(kNotificationsAfter, {owner, std::to_string(after), std::to_string(limit)});
  if (!r.ok()) return r.status();
  return FromJsonRows<v1::Notification>(*r);
}

absl::StatusOr<int64_t> PgSessionStore::DropJobNotifications(
    const std::vector<std::string>& job_ids) {
  if (job_ids.empty()) return 0;
  auto r = pool_->Exec(kDropJobNotifications, {absl::StrJoin(job_ids, " ")});
  if (!r.ok()) return r.status();
  return r->affected();
}

}  // namespace orchestrator::sessions
