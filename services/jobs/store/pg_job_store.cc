#include "services/jobs/store/pg_job_store.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "services/common/crypto/secret_box.h"
#include "services/common/db/sql_time.h"

namespace orchestrator::jobs {
namespace {

using google::protobuf::util::TimeUtil;

// $n (microseconds since the epoch) as a timestamptz, exactly.
#define TS(n) ORCHESTRATOR_SQL_TIME(n)
#define US(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

#define JOB_COLUMNS \
  "j.id, j.kind, j.owner_id, j.project_id, j.state, j.attempt, j.max_attempts, j.priority, " US( \
      "j.run_after") ", coalesce(j.request_id, ''), j.params::text, j.result::text, "           \
                     "j.error_code, j.error_message, " US("j.create_time") ", " US(             \
                         "j.start_time") ", " US("j.end_time") ", " US("j.update_time")         \
                         ", j.cancel_requested, j.progress_percent, j.progress_message, "       \
                         "j.last_event_sequence, j.origin::text"

// Announces the job's latest event: "<job> <sequence> <owner> <state> <type>".
#define NOTIFY_EVENT(alias, type)                                                               \
  "pg_notify('orchestrator_job_events', " alias ".id || ' ' || " alias                          \
  ".last_event_sequence || ' ' || " alias ".owner_id || ' ' || " alias ".state || ' ' || " type \
  ")"

constexpr db::Statement kEnqueue{
    "jobs_enqueue",
    "WITH j AS (INSERT INTO jobs.jobs (id, kind, owner_id, project_id, priority, run_after, "
    "request_id, concurrency_key, params, max_attempts, create_time, update_time, "
    "last_event_sequence, origin) VALUES ($1, $2, $3, $4, $5::int, " TS(6) ", $7, $8, "
    "$9::jsonb, $10::int, " TS(11) ", " TS(11) ", 1, $12::jsonb) "
    "ON CONFLICT (owner_id, request_id) WHERE request_id IS NOT NULL DO NOTHING RETURNING *), "
    "ev AS (INSERT INTO jobs.events (job_id, sequence, type, create_time, body) "
    "SELECT id, 1, 1, create_time, jsonb_build_object('toState', 'JOB_STATE_QUEUED') FROM j) "
    "SELECT " JOB_COLUMNS ", " NOTIFY_EVENT("j", "1") ", pg_notify('orchestrator_jobs_ready', j.kind) "
    "FROM j"};
constexpr db::Statement kGetByRequest{
    "jobs_get_by_request",
    "SELECT " JOB_COLUMNS " FROM jobs.jobs j WHERE j.owner_id = $1 AND j.request_id = $2"};
constexpr db::Statement kGet{"jobs_get", "SELECT " JOB_COLUMNS " FROM jobs.jobs j WHERE j.id = $1"};
constexpr db::Statement kGetMany{
    "jobs_get_many", "SELECT " JOB_COLUMNS " FROM jobs.jobs j WHERE j.id = ANY($1::text[])"};
constexpr db::Statement kListProject{
    "jobs_list_project", "SELECT " JOB_COLUMNS
                         " FROM jobs.jobs j WHERE j.project_id = $1 AND j.owner_id = $2 "
                         "ORDER BY j.create_time DESC, j.id DESC LIMIT $3::int"};
constexpr db::Statement kList{
    "jobs_list",
    "SELECT " JOB_COLUMNS " FROM jobs.jobs j WHERE ($1 = '' OR j.owner_id = $1) "
    "AND ($2 = '' OR j.project_id = $2) AND ($3 = '' OR j.kind = $3) "
    "AND ($4::int = 0 OR j.state = $4::int) "
    "AND ($5::bigint IS NULL OR (" US("j.create_time") ", j.id) < ($5::bigint, $6::text)) "
    "ORDER BY j.create_time DESC, j.id DESC LIMIT $7"};
constexpr db::Statement kListEvents{
    "jobs_list_events",
    "SELECT e.sequence, e.type, " US("e.create_time") ", e.body::text FROM jobs.events e "
    "WHERE e.job_id = $1 AND e.sequence > $2::bigint ORDER BY e.sequence LIMIT $3"};

// A claim reserves jobs for a worker: they stay QUEUED (no attempt charged,
// no event) with a lease the worker's heartbeat renews; kStart makes them
// RUNNING when a handler is free. A reservation whose lease ran out (its
// worker died) is claimable again, in its original place.
#define RESERVABLE(alias, now) \
  "(" alias "lease_expires IS NULL OR " alias "lease_expires < " now ")"

// Unlimited kinds: plain SKIP LOCKED, no coordination between claimers.
constexpr db::Statement kClaim{
    "jobs_claim",
    "WITH picked AS (SELECT id FROM jobs.jobs WHERE state = 1 AND run_after <= " TS(1) " "
    "AND " RESERVABLE("", TS(1)) " AND kind = ANY($2::text[]) AND concurrency_key IS NULL "
    "ORDER BY priority DESC, run_after, id LIMIT $3 FOR UPDATE SKIP LOCKED), "
    "j AS (UPDATE jobs.jobs j SET lease_owner = $4, "
    "lease_expires = " TS(1) " + $5::bigint * interval '1 microsecond' "
    "FROM picked WHERE j.id = picked.id RETURNING j.*) "
    "SELECT " JOB_COLUMNS " FROM j ORDER BY j.priority DESC, j.run_after, j.id"};

// Reserved jobs whose handler starts now: RUNNING, and the attempt charged.
constexpr db::Statement kStart{
    "jobs_start",
    "WITH j AS (UPDATE jobs.jobs j SET state = 2, attempt = j.attempt + 1, "
    "lease_expires = " TS(1) " + $3::bigint * interval '1 microsecond', "
    "start_time = coalesce(j.start_time, " TS(1) "), update_time = " TS(1) ", "
    "last_event_sequence = j.last_event_sequence + 1 "
    "WHERE j.id = ANY($2::text[]) AND j.lease_owner = $4 AND j.state = 1 RETURNING j.*), "
    "ev AS (INSERT INTO jobs.events (job_id, sequence, type, create_time, body) "
    "SELECT id, last_event_sequence, 1, " TS(1) ", jsonb_build_object('fromState', "
    "'JOB_STATE_QUEUED', 'toState', 'JOB_STATE_RUNNING', 'attempt', attempt) FROM j) "
    "SELECT " JOB_COLUMNS ", " NOTIFY_EVENT("j", "1") " FROM j"};

// Reservations given back (a stopping worker): claimable by anyone at once.
constexpr db::Statement kUnreserve{
    "jobs_unreserve",
    "WITH j AS (UPDATE jobs.jobs SET lease_owner = NULL, lease_expires = NULL "
    "WHERE id = ANY($1::text[]) AND lease_owner = $2 AND state = 1 RETURNING kind) "
    "SELECT pg_notify('orchestrator_jobs_ready', kind) FROM j"};

// Reservations of dead workers: cleared, and announced so idle workers
// claim them now rather than at their next poll.
constexpr db::Statement kReapReservations{
    "jobs_reap_reservations",
    "WITH expired AS (SELECT id FROM jobs.jobs WHERE state = 1 AND lease_expires < " TS(1) " "
    "ORDER BY lease_expires LIMIT 1000 FOR UPDATE SKIP LOCKED), "
    "j AS (UPDATE jobs.jobs j SET lease_owner = NULL, lease_expires = NULL FROM expired "
    "WHERE j.id = expired.id RETURNING j.kind) "
    "SELECT pg_notify('orchestrator_jobs_ready', kind) FROM j"};

// Whether any keyed or limited job is ready, so the locked claim below runs
// only when there is something for it.
constexpr db::Statement kHasLimitedWork{
    "jobs_has_limited_work",
    "SELECT EXISTS (SELECT 1 FROM jobs.jobs WHERE state = 1 AND run_after <= " TS(1) " "
    "AND " RESERVABLE("", TS(1)) " AND kind = ANY($2::text[]) AND concurrency_key IS NOT NULL) "
    "OR EXISTS (SELECT 1 FROM jobs.jobs WHERE cardinality($3::text[]) > 0 AND state = 1 "
    "AND run_after <= " TS(1) " AND " RESERVABLE("", TS(1)) " "
    "AND kind = ANY($2::text[]) AND kind = ANY($3::text[]))"};

// Limited kinds and keyed jobs: claimed by one claimer at a time (advisory
// lock held by the caller's transaction), counting what already runs.
constexpr db::Statement kClaimLock{
    "jobs_claim_lock", "SELECT pg_advisory_xact_lock(hashtext('orchestrator.jobs.limited_claim'))"};
// Reserved jobs count as running: they start without asking again.
#define HELD(alias, now) \
  "(" alias "state = 2 OR (" alias "state = 1 AND " alias "lease_expires >= " now "))"
constexpr db::Statement kClaimLimited{
    "jobs_claim_limited",
    "WITH limits AS (SELECT * FROM unnest($6::text[], $7::int[]) AS l(kind, max_running)), "
    "running AS (SELECT owner_id, kind, count(*) AS n FROM jobs.jobs WHERE " HELD("", TS(1)) " "
    "GROUP BY owner_id, kind), "
    "candidates AS (SELECT c.id, c.owner_id, c.kind, c.concurrency_key, c.priority, c.run_after, "
    "row_number() OVER (PARTITION BY c.owner_id, c.kind ORDER BY c.priority DESC, c.run_after, "
    "c.id) AS rank_owner, row_number() OVER (PARTITION BY c.concurrency_key ORDER BY "
    "c.priority DESC, c.run_after, c.id) AS rank_key FROM jobs.jobs c WHERE c.state = 1 "
    "AND c.run_after <= " TS(1) " AND " RESERVABLE("c.", TS(1)) " AND c.kind = ANY($2::text[]) "
    "AND (c.concurrency_key IS NOT NULL OR c.kind IN (SELECT kind FROM limits))), "
    "picked AS (SELECT c.id FROM candidates c LEFT JOIN limits l ON l.kind = c.kind "
    "LEFT JOIN running r ON r.owner_id = c.owner_id AND r.kind = c.kind "
    "WHERE (l.max_running IS NULL OR coalesce(r.n, 0) + c.rank_owner <= l.max_running) "
    "AND (c.concurrency_key IS NULL OR (c.rank_key = 1 AND NOT EXISTS (SELECT 1 FROM "
    "jobs.jobs k WHERE " HELD("k.", TS(1)) " AND k.concurrency_key = c.concurrency_key))) "
    "ORDER BY c.priority DESC, c.run_after, c.id LIMIT $3), "
    "j AS (UPDATE jobs.jobs j SET lease_owner = $4, "
    "lease_expires = " TS(1) " + $5::bigint * interval '1 microsecond' "
    "FROM picked WHERE j.id = picked.id AND j.state = 1 AND " RESERVABLE("j.", TS(1)) " "
    "RETURNING j.*) "
    "SELECT " JOB_COLUMNS " FROM j ORDER BY j.priority DESC, j.run_after, j.id"};

constexpr db::Statement kHeartbeat{
    "jobs_heartbeat",
    "UPDATE jobs.jobs SET lease_expires = " TS(1) " + $2::bigint * interval '1 microsecond' "
    "WHERE id = ANY($3::text[]) AND lease_owner = $4 AND state IN (1, 2) "
    "RETURNING id, cancel_requested"};

constexpr db::Statement kAppend{
    "jobs_append",
    "WITH j AS (UPDATE jobs.jobs SET last_event_sequence = last_event_sequence + 1, "
    "progress_percent = CASE WHEN $3::int = 2 THEN $5::int ELSE progress_percent END, "
    "progress_message = CASE WHEN $3::int = 2 THEN $6 ELSE progress_message END, "
    "update_time = " TS(1) " WHERE id = $2 AND lease_owner = $7 AND state = 2 RETURNING *), "
    "ev AS (INSERT INTO jobs.events (job_id, sequence, type, create_time, body) "
    "SELECT id, last_event_sequence, $3::int, " TS(1) ", $4::jsonb FROM j) "
    "SELECT " NOTIFY_EVENT("j", "$3::int") " FROM j"};

// Ends an attempt: an optional RESULT event, then the STATE_CHANGED event.
constexpr db::Statement kFinish{
    "jobs_finish",
    "WITH j AS (UPDATE jobs.jobs j SET state = CASE WHEN $4::int = 1 AND j.cancel_requested "
    "THEN 5 ELSE $4::int END, result = $5::jsonb, error_code = $6::int, error_message = $7, "
    "end_time = CASE WHEN $4::int IN (3, 4, 5) OR j.cancel_requested THEN " TS(1) " END, "
    "run_after = CASE WHEN $4::int = 1 THEN " TS(8) " ELSE j.run_after END, "
    "lease_owner = NULL, lease_expires = NULL, update_time = " TS(1) ", "
    "progress_percent = CASE WHEN $4::int = 3 THEN 100 ELSE j.progress_percent END, "
    "last_event_sequence = j.last_event_sequence + CASE WHEN $5::jsonb IS NULL THEN 1 ELSE 2 END "
    "WHERE j.id = $2 AND j.lease_owner = $3 AND j.state = 2 AND j.attempt = $9::int RETURNING j.*), "
    "result_ev AS (INSERT INTO jobs.events (job_id, sequence, type, create_time, body) "
    "SELECT id, last_event_sequence - 1, 4, " TS(1) ", jsonb_build_object('result', result) "
    "FROM j WHERE $5::jsonb IS NOT NULL), "
    "state_ev AS (INSERT INTO jobs.events (job_id, sequence, type, create_time, body) "
    "SELECT id, last_event_sequence, 1, " TS(1) ", CASE WHEN state = 5 AND $4::int = 1 THEN "
    "jsonb_build_object('fromState', 'JOB_STATE_RUNNING', 'toState', 'JOB_STATE_CANCELLED', "
    "'attempt', attempt, 'reason', 'cancelled on request') ELSE $10::jsonb END FROM j) "
    "SELECT " NOTIFY_EVENT("j", "1") ", CASE WHEN j.state = 1 THEN "
    "pg_notify('orchestrator_jobs_ready', j.kind) END FROM j"};

// Many successful attempts at once: one statement, one commit. An empty
// result writes no RESULT event.
constexpr db::Statement kFinishSucceeded{
    "jobs_finish_succeeded",
    "WITH input AS (SELECT * FROM unnest($2::text[], $3::int[], $4::text[]) AS i(id, attempt, "
    "result)), "
    "j AS (UPDATE jobs.jobs j SET state = 3, result = i.result::jsonb, end_time = " TS(1) ", "
    "lease_owner = NULL, lease_expires = NULL, update_time = " TS(1) ", progress_percent = 100, "
    "last_event_sequence = j.last_event_sequence + CASE WHEN i.result = '{}' THEN 1 ELSE 2 END "
    "FROM input i WHERE j.id = i.id AND j.lease_owner = $5 AND j.state = 2 "
    "AND j.attempt = i.attempt RETURNING j.*), "
    "result_ev AS (INSERT INTO jobs.events (job_id, sequence, type, create_time, body) "
    "SELECT id, last_event_sequence - 1, 4, " TS(1) ", jsonb_build_object('result', result) "
    "FROM j WHERE result <> '{}'::jsonb), "
    "state_ev AS (INSERT INTO jobs.events (job_id, sequence, type, create_time, body) "
    "SELECT id, last_event_sequence, 1, " TS(1) ", jsonb_build_object('fromState', "
    "'JOB_STATE_RUNNING', 'toState', 'JOB_STATE_SUCCEEDED', 'attempt', attempt) FROM j) "
    "SELECT j.id, " NOTIFY_EVENT("j", "1") " FROM j"};

constexpr db::Statement kRelease{
    "jobs_release",
    "WITH j AS (UPDATE jobs.jobs j SET state = CASE WHEN j.cancel_requested THEN 5 ELSE 1 END, "
    "end_time = CASE WHEN j.cancel_requested THEN " TS(1) " END, lease_owner = NULL, "
    "lease_expires = NULL, update_time = " TS(1) ", last_event_sequence = "
    "j.last_event_sequence + 1 WHERE j.id = $2 AND j.lease_owner = $3 AND j.state = 2 "
    "RETURNING j.*), "
    "ev AS (INSERT INTO jobs.events (job_id, sequence, type, create_time, body) "
    "SELECT id, last_event_sequence, 1, " TS(1) ", jsonb_build_object('fromState', "
    "'JOB_STATE_RUNNING', 'toState', CASE WHEN state = 5 THEN 'JOB_STATE_CANCELLED' ELSE "
    "'JOB_STATE_QUEUED' END, 'attempt', attempt, 'reason', "
    "'released by a worker shutting down') FROM j) "
    "SELECT " NOTIFY_EVENT("j", "1") ", CASE WHEN j.state = 1 THEN "
    "pg_notify('orchestrator_jobs_ready', j.kind) END FROM j"};

// Keeps run_after: a re-queued job goes back to its place, not to the end.
constexpr db::Statement kReap{
    "jobs_reap",
    "WITH expired AS (SELECT id FROM jobs.jobs WHERE state = 2 AND lease_expires < " TS(1) " "
    "ORDER BY lease_expires LIMIT 1000 FOR UPDATE SKIP LOCKED), "
    "j AS (UPDATE jobs.jobs j SET state = CASE WHEN j.cancel_requested THEN 5 "
    "WHEN j.attempt >= j.max_attempts THEN 4 ELSE 1 END, "
    "lease_owner = NULL, lease_expires = NULL, "
    "error_code = 14, error_message = 'the worker running it stopped or was killed (lease "
    "expired)', end_time = CASE WHEN j.cancel_requested OR j.attempt >= j.max_attempts THEN "
    TS(1) " END, "
    "update_time = " TS(1) ", last_event_sequence = j.last_event_sequence + 1 "
    "FROM expired WHERE j.id = expired.id RETURNING j.*), "
    "ev AS (INSERT INTO jobs.events (job_id, sequence, type, create_time, body) "
    "SELECT id, last_event_sequence, 1, " TS(1) ", jsonb_build_object('fromState', "
    "'JOB_STATE_RUNNING', 'toState', CASE WHEN state = 4 THEN 'JOB_STATE_FAILED' WHEN state = 5 "
    "THEN 'JOB_STATE_CANCELLED' ELSE 'JOB_STATE_QUEUED' END, 'attempt', attempt, 'reason', 'lease expired: the worker stopped or "
    "was killed', 'error', jsonb_build_object('code', 14, 'message', error_message)) FROM j) "
    "SELECT " NOTIFY_EVENT("j", "1") ", CASE WHEN j.state = 1 THEN "
    "pg_notify('orchestrator_jobs_ready', j.kind) END FROM j"};

// A queued job ends at once and loses any reservation on it (the worker
// holding it finds out at Start or its heartbeat); a running one keeps its
// lease until its handler stops.
constexpr db::Statement kCancel{
    "jobs_cancel",
    "WITH j AS (UPDATE jobs.jobs j SET state = CASE WHEN j.state = 1 THEN 5 ELSE j.state END, "
    "cancel_requested = true, end_time = CASE WHEN j.state = 1 THEN " TS(1) " ELSE j.end_time END, "
    "lease_owner = CASE WHEN j.state = 1 THEN NULL ELSE j.lease_owner END, "
    "lease_expires = CASE WHEN j.state = 1 THEN NULL ELSE j.lease_expires END, "
    "update_time = " TS(1) ", last_event_sequence = j.last_event_sequence + 1 "
    "WHERE j.id = $2 AND j.state IN (1, 2) RETURNING j.*), "
    "ev AS (INSERT INTO jobs.events (job_id, sequence, type, create_time, body) "
    "SELECT id, last_event_sequence, CASE WHEN state = 5 THEN 1 ELSE 5 END, " TS(1) ", "
    "CASE WHEN state = 5 THEN jsonb_build_object('fromState', 'JOB_STATE_QUEUED', 'toState', "
    "'JOB_STATE_CANCELLED', 'attempt', attempt, 'reason', $4::text) ELSE "
    "jsonb_build_object('requesterId', $3::text, 'reason', $4::text) END FROM j) "
    "SELECT " JOB_COLUMNS ", " NOTIFY_EVENT("j", "CASE WHEN j.state = 5 THEN 1 ELSE 5 END") " FROM j"};

// ClearProject, first: kCancel for every queued or running job of a
// project that was not asked to stop already.
constexpr db::Statement kCancelProject{
    "jobs_cancel_project",
    "WITH j AS (UPDATE jobs.jobs j SET state = CASE WHEN j.state = 1 THEN 5 ELSE j.state END, "
    "cancel_requested = true, end_time = CASE WHEN j.state = 1 THEN " TS(1) " ELSE j.end_time END, "
    "lease_owner = CASE WHEN j.state = 1 THEN NULL ELSE j.lease_owner END, "
    "lease_expires = CASE WHEN j.state = 1 THEN NULL ELSE j.lease_expires END, "
    "update_time = " TS(1) ", last_event_sequence = j.last_event_sequence + 1 "
    "WHERE j.project_id = $2 AND (j.state = 1 OR (j.state = 2 AND NOT j.cancel_requested)) "
    "RETURNING j.*), "
    "ev AS (INSERT INTO jobs.events (job_id, sequence, type, create_time, body) "
    "SELECT id, last_event_sequence, CASE WHEN state = 5 THEN 1 ELSE 5 END, " TS(1) ", "
    "CASE WHEN state = 5 THEN jsonb_build_object('fromState', 'JOB_STATE_QUEUED', 'toState', "
    "'JOB_STATE_CANCELLED', 'attempt', attempt, 'reason', $3::text) ELSE "
    "jsonb_build_object('requesterId', 'mesh', 'reason', $3::text) END FROM j) "
    "SELECT j.id, " NOTIFY_EVENT("j", "CASE WHEN j.state = 5 THEN 1 ELSE 5 END") " FROM j"};

// The project's ended jobs, listed first (the caller drops what refers to
// them), then deleted by id with their events (ON DELETE CASCADE, at the
// end of the statement: the count reads them before).
constexpr db::Statement kEndedInProject{
    "jobs_ended_in_project",
    "SELECT id FROM jobs.jobs WHERE project_id = $1 AND state IN (3, 4, 5) ORDER BY id LIMIT 1000"};
constexpr db::Statement kDeleteProjectEnded{
    "jobs_delete_project_ended",
    "WITH gone AS (DELETE FROM jobs.jobs WHERE project_id = $1 AND state IN (3, 4, 5) "
    "AND id = ANY($2::text[]) RETURNING id) "
    "SELECT gone.id, (SELECT count(*) FROM jobs.events e WHERE e.job_id = gone.id) FROM gone"};

constexpr db::Statement kRunningInProject{
    "jobs_running_in_project",
    "SELECT id FROM jobs.jobs WHERE project_id = $1 AND state IN (1, 2) ORDER BY id"};

constexpr db::Statement kRetry{
    "jobs_retry",
    "WITH old AS (SELECT id, state FROM jobs.jobs WHERE id = $2 AND state IN (4, 5) FOR UPDATE), "
    "j AS (UPDATE jobs.jobs j SET state = 1, attempt = 0, run_after = " TS(1) ", "
    "lease_owner = NULL, lease_expires = NULL, "
    "cancel_requested = false, result = NULL, error_code = NULL, error_message = NULL, "
    "end_time = NULL, progress_percent = 0, progress_message = '', update_time = " TS(1) ", "
    "last_event_sequence = j.last_event_sequence + 1 FROM old WHERE j.id = old.id "
    "RETURNING j.*, old.state AS old_state), "
    "ev AS (INSERT INTO jobs.events (job_id, sequence, type, create_time, body) "
    "SELECT id, last_event_sequence, 1, " TS(1) ", jsonb_build_object('fromState', CASE WHEN "
    "old_state = 4 THEN 'JOB_STATE_FAILED' ELSE 'JOB_STATE_CANCELLED' END, 'toState', "
    "'JOB_STATE_QUEUED', 'reason', 'retried') FROM j) "
    "SELECT " JOB_COLUMNS ", " NOTIFY_EVENT("j", "1") ", pg_notify('orchestrator_jobs_ready', j.kind) "
    "FROM j"};

constexpr db::Statement kPrune{
    "jobs_prune", "DELETE FROM jobs.jobs WHERE state IN (3, 4, 5) AND end_time < " TS(1)};

using db::Micros;
std::string Micros(absl::Duration d) { return std::to_string(absl::ToInt64Microseconds(d)); }

// {a,b,c} for a text[] parameter; elements are quoted.
std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

void FromJson(absl::string_view json, google::protobuf::Message* m) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  (void)google::protobuf::util::JsonStringToMessage(std::string(json), m, options);
}

google::protobuf::Timestamp Stamp(const db::Result& r, int row, int col) {
  return TimeUtil::MicrosecondsToTimestamp(r.GetInt64(row, col));
}

v1::Job JobFromRow(const db::Result& r, int row) {
  v1::Job j;
  j.set_id(std::string(r.Get(row, 0)));
  j.set_kind(std::string(r.Get(row, 1)));
  j.set_owner_id(std::string(r.Get(row, 2)));
  j.set_project_id(std::string(r.Get(row, 3)));
  j.set_state(static_cast<v1::JobState>(r.GetInt64(row, 4)));
  j.set_attempt(static_cast<int32_t>(r.GetInt64(row, 5)));
  j.set_max_attempts(static_cast<int32_t>(r.GetInt64(row, 6)));
  j.set_priority(static_cast<int32_t>(r.GetInt64(row, 7)));
  *j.mutable_run_after() = Stamp(r, row, 8);
  j.set_request_id(std::string(r.Get(row, 9)));
  FromJson(r.Get(row, 10), j.mutable_params());
  if (!r.IsNull(row, 11)) FromJson(r.Get(row, 11), j.mutable_result());
  if (!r.IsNull(row, 12)) {
    j.mutable_error()->set_code(static_cast<int32_t>(r.GetInt64(row, 12)));
    j.mutable_error()->set_message(std::string(r.Get(row, 13)));
  }
  *j.mutable_create_time() = Stamp(r, row, 14);
  if (!r.IsNull(row, 15)) *j.mutable_start_time() = Stamp(r, row, 15);
  if (!r.IsNull(row, 16)) *j.mutable_end_time() = Stamp(r, row, 16);
  *j.mutable_update_time() = Stamp(r, row, 17);
  j.set_cancel_requested(r.GetBool(row, 18));
  j.set_progress_percent(static_cast<int32_t>(r.GetInt64(row, 19)));
  j.set_progress_message(std::string(r.Get(row, 20)));
  j.set_last_event_sequence(r.GetInt64(row, 21));
  if (!r.IsNull(row, 22)) FromJson(r.Get(row, 22), j.mutable_origin());
  return j;
}

std::vector<v1::Job> Jobs(const db::Result& r) {
  std::vector<v1::Job> out;
  out.reserve(r.rows());
  for (int i = 0; i < r.rows(); ++i) out.push_back(JobFromRow(r, i));
  return out;
}

db::Params EnqueueParams(const EnqueueRequest& req, absl::Time now) {
  const absl::Time run_after = req.run_after == absl::InfinitePast() ? now : req.run_after;
  return {NewId("job_"),
          req.kind,
          req.owner_id,
          req.project_id,
          std::to_string(req.priority),
          Micros(run_after),
          db::NullIfEmpty(req.request_id),
          db::NullIfEmpty(req.concurrency_key),
          ToJson(req.params),
          std::to_string(req.max_attempts),
          Micros(now),
          req.origin.kind() == v1::JOB_ORIGIN_KIND_UNSPECIFIED
              ? std::nullopt
              : std::optional<std::string>(ToJson(req.origin))};
}

}  // namespace

v1::JobEvent EventFromColumns(absl::string_view job_id, int64_t sequence, int type,
                              int64_t create_micros, absl::string_view body) {
  v1::JobEvent e;
  e.set_job_id(std::string(job_id));
  e.set_sequence(sequence);
  e.set_type(static_cast<v1::JobEventType>(type));
  *e.mutable_create_time() = TimeUtil::MicrosecondsToTimestamp(create_micros);
  switch (e.type()) {
    case v1::JOB_EVENT_TYPE_STATE_CHANGED:
      FromJson(body, e.mutable_state_changed());
      break;
    case v1::JOB_EVENT_TYPE_PROGRESS:
      FromJson(body, e.mutable_progress());
      break;
    case v1::JOB_EVENT_TYPE_LOG_LINE:
      FromJson(body, e.mutable_log_line());
      break;
    case v1::JOB_EVENT_TYPE_RESULT:
      FromJson(body, e.mutable_result());
      break;
    case v1::JOB_EVENT_TYPE_CANCEL_REQUESTED:
      FromJson(body, e.mutable_cancel_requested());
      break;
    default:
      break;
  }
  return e;
}

absl::StatusOr<v1::Job> PgJobStore::Enqueue(db::Transaction& tx, const EnqueueRequest& req,
                                            absl::Time now) {
  auto r = tx.Exec(kEnqueue, EnqueueParams(req, now));
  if (!r.ok()) return r.status();
  if (r->rows() == 1) return JobFromRow(*r, 0);
  auto earlier = tx.Exec(kGetByRequest, {req.owner_id, req.request_id});
  if (!earlier.ok()) return earlier.status();
  if (earlier->rows() != 1)
    return absl::AbortedError("concurrent enqueue with the same request_id");
  return JobFromRow(*earlier, 0);
}

absl::StatusOr<std::optional<v1::Job>> PgJobStore::FindByRequest(const std::string& owner_id,
                                                                 const std::string& request_id) {
  if (request_id.empty()) return std::nullopt;
  auto r = pool_->Exec(kGetByRequest, {owner_id, request_id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::nullopt;
  return JobFromRow(*r, 0);
}

absl::StatusOr<v1::Job> PgJobStore::Enqueue(const EnqueueRequest& req, absl::Time now) {
  absl::StatusOr<v1::Job> out;
  absl::Status s = pool_->InTransaction([&](db::Transaction& tx) {
    out = Enqueue(tx, req, now);
    return out.status();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<v1::Job> PgJobStore::Get(absl::string_view job_id) {
  auto r = pool_->Exec(kGet, {std::string(job_id)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return absl::NotFoundError(absl::StrCat("job '", job_id, "' not found"));
  return JobFromRow(*r, 0);
}

absl::StatusOr<std::optional<v1::Job>> PgJobStore::Find(db::Transaction& tx,
                                                        const std::string& job_id) {
  auto r = tx.Exec(kGet, {job_id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::nullopt;
  return JobFromRow(*r, 0);
}

absl::StatusOr<std::vector<v1::Job>> PgJobStore::GetMany(const std::vector<std::string>& job_ids) {
  std::vector<v1::Job> out;
  if (job_ids.empty()) return out;
  auto r = pool_->Exec(kGetMany, {db::TextArray(job_ids)});
  if (!r.ok()) return r.status();
  for (int i = 0; i < r->rows(); ++i) out.push_back(JobFromRow(*r, i));
  return out;
}

absl::StatusOr<std::vector<v1::Job>> PgJobStore::ListProjectJobs(const std::string& owner_id,
                                                                 const std::string& project_id,
                                                                 int limit) {
  auto r = pool_->Exec(kListProject, {project_id, owner_id, std::to_string(limit)});
  if (!r.ok()) return r.status();
  return Jobs(*r);
}

absl::StatusOr<JobPage> PgJobStore::List(const JobFilter& f, const PageRequest& page) {
  const bool resume = page.after.size() == 2;
  auto r = pool_->Exec(kList, {f.owner_id, f.project_id, f.kind, std::to_string(f.state),
                               resume ? std::optional<std::string>(page.after[0]) : std::nullopt,
                               resume ? std::optional<std::string>(page.after[1]) : std::nullopt,
                               std::to_string(page.page_size + 1)});
  if (!r.ok()) return r.status();
  JobPage out;
  const int n = std::min(r->rows(), page.page_size);
  for (int i = 0; i < n; ++i) out.jobs.push_back(JobFromRow(*r, i));
  if (r->rows() > page.page_size) {
    out.last_keys = {std::string(r->Get(n - 1, 14)), std::string(r->Get(n - 1, 0))};
  }
  return out;
}

absl::StatusOr<std::vector<v1::JobEvent>> PgJobStore::ListEvents(absl::string_view job_id,
                                                                 int64_t after_sequence,
                                                                 int limit) {
  auto r = pool_->Exec(
      kListEvents, {std::string(job_id), std::to_string(after_sequence), std::to_string(limit)});
  if (!r.ok()) return r.status();
  std::vector<v1::JobEvent> out;
  out.reserve(r->rows());
  for (int i = 0; i < r->rows(); ++i) {
    out.push_back(EventFromColumns(job_id, r->GetInt64(i, 0), static_cast<int>(r->GetInt64(i, 1)),
                                   r->GetInt64(i, 2), r->Get(i, 3)));
  }
  return out;
}

absl::StatusOr<std::vector<v1::Job>> PgJobStore::Claim(const std::string& worker_id,
                                                       const std::vector<std::string>& kinds,
                                                       const ClaimLimits& limits, int batch,
                                                       absl::Duration lease, absl::Time now) {
  std::vector<std::string> limited_kinds;
  std::vector<std::string> limited_max;
  for (const auto& [kind, max] : limits.per_owner) {
    limited_kinds.push_back(kind);
    limited_max.push_back(std::to_string(max));
  }
  std::vector<std::string> free_kinds;
  for (const auto& k : kinds) {
    if (std::find(limited_kinds.begin(), limited_kinds.end(), k) == limited_kinds.end()) {
      free_kinds.push_back(k);
    }
  }
  std::vector<v1::Job> claimed;
  auto has_limited = pool_->Exec(kHasLimitedWork,
                                 {Micros(now), db::TextArray(kinds), db::TextArray(limited_kinds)});
  if (!has_limited.ok()) return has_limited.status();
  // Keyed or limited jobs first: they are rarer and must not starve.
  absl::Status limited =
      !has_limited->GetBool(0, 0)
          ? absl::OkStatus()
          : pool_->InTransaction([&](db::Transaction& tx) -> absl::Status {
              if (auto locked = tx.Exec(kClaimLock); !locked.ok()) return locked.status();
              auto r =
                  tx.Exec(kClaimLimited, {Micros(now), db::TextArray(kinds), std::to_string(batch),
                                          worker_id, Micros(lease), db::TextArray(limited_kinds),
                                          "{" + absl::StrJoin(limited_max, ",") + "}"});
              if (!r.ok()) return r.status();
              claimed = Jobs(*r);
              return absl::OkStatus();
            });
  if (!limited.ok()) return limited;
  const int room = batch - static_cast<int>(claimed.size());
  if (room > 0 && !free_kinds.empty()) {
    auto r = pool_->Exec(kClaim, {Micros(now), db::TextArray(free_kinds), std::to_string(room),
                                  worker_id, Micros(lease)});
    if (!r.ok()) {
      if (claimed.empty()) return r.status();
      return claimed;  // keep what we hold; the next claim retries
    }
    for (auto& j : Jobs(*r)) claimed.push_back(std::move(j));
  }
  return claimed;
}

absl::StatusOr<std::vector<v1::Job>> PgJobStore::Start(const std::string& worker_id,
                                                       const std::vector<std::string>& job_ids,
                                                       absl::Duration lease, absl::Time now) {
  if (job_ids.empty()) return std::vector<v1::Job>();
  auto r = pool_->Exec(kStart, {Micros(now), db::TextArray(job_ids), Micros(lease), worker_id});
  if (!r.ok()) return r.status();
  return Jobs(*r);
}

absl::Status PgJobStore::Unreserve(const std::string& worker_id,
                                   const std::vector<std::string>& job_ids) {
  if (job_ids.empty()) return absl::OkStatus();
  return pool_->Exec(kUnreserve, {db::TextArray(job_ids), worker_id}).status();
}

absl::StatusOr<absl::flat_hash_map<std::string, bool>> PgJobStore::Heartbeat(
    const std::string& worker_id, const std::vector<std::string>& job_ids, absl::Duration lease,
    absl::Time now) {
  absl::flat_hash_map<std::string, bool> held;
  if (job_ids.empty()) return held;
  auto r = pool_->Exec(kHeartbeat, {Micros(now), Micros(lease), db::TextArray(job_ids), worker_id});
  if (!r.ok()) return r.status();
  for (int i = 0; i < r->rows(); ++i) held[std::string(r->Get(i, 0))] = r->GetBool(i, 1);
  return held;
}

absl::Status PgJobStore::AppendEvent(const std::string& worker_id, const std::string& job_id,
                                     const v1::JobEvent& unbounded, absl::Time now) {
  const v1::JobEvent event = BoundedEvent(unbounded);
  std::string body;
  int percent = 0;
  std::string message;
  switch (event.payload_case()) {
    case v1::JobEvent::kProgress:
      body = ToJson(event.progress());
      percent = event.progress().percent();
      message = event.progress().message();
      break;
    case v1::JobEvent::kLogLine:
      body = ToJson(event.log_line());
      break;
    default:
      return absl::InvalidArgumentError("only progress and log events come from handlers");
  }
  auto r = pool_->Exec(kAppend, {Micros(now), job_id, std::to_string(event.type()), body,
                                 std::to_string(percent), message, worker_id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return absl::AbortedError("the job's lease was lost");
  return absl::OkStatus();
}

absl::StatusOr<bool> PgJobStore::Finish(const std::string& worker_id, const v1::Job& job,
                                        const AttemptOutcome& outcome, absl::Time now) {
  v1::JobStateChange change;
  change.set_from_state(v1::JOB_STATE_RUNNING);
  change.set_to_state(outcome.state);
  change.set_attempt(job.attempt());
  std::optional<std::string> result, code, message;
  if (outcome.state == v1::JOB_STATE_SUCCEEDED) result = ToJson(BoundedResult(outcome.result));
  if (!outcome.error.ok()) {
    const absl::Status error = BoundedError(outcome.error);
    code = std::to_string(static_cast<int>(error.code()));
    message = std::string(error.message());
    change.mutable_error()->set_code(static_cast<int32_t>(error.code()));
    change.mutable_error()->set_message(*message);
  }
  if (outcome.state == v1::JOB_STATE_QUEUED) {
    *change.mutable_run_after() =
        TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(outcome.retry_at));
    change.set_reason("retrying after a transient failure");
  }
  auto r = pool_->Exec(
      kFinish,
      {Micros(now), job.id(), worker_id, std::to_string(static_cast<int>(outcome.state)), result,
       code, message, Micros(outcome.retry_at), std::to_string(job.attempt()), ToJson(change)});
  if (!r.ok()) return r.status();
  return r->rows() == 1;
}

absl::StatusOr<std::vector<std::string>> PgJobStore::FinishSucceeded(
    const std::string& worker_id, const std::vector<SuccessfulAttempt>& attempts, absl::Time now) {
  std::vector<std::string> ids, numbers, results;
  for (const auto& a : attempts) {
    ids.push_back(a.job_id);
    numbers.push_back(std::to_string(a.attempt));
    results.push_back(ToJson(BoundedResult(a.result)));
  }
  auto r = pool_->Exec(kFinishSucceeded,
                       {Micros(now), db::TextArray(ids), "{" + absl::StrJoin(numbers, ",") + "}",
                        db::TextArray(results), worker_id});
  if (!r.ok()) return r.status();
  std::vector<std::string> finished;
  for (int i = 0; i < r->rows(); ++i) finished.emplace_back(r->Get(i, 0));
  return finished;
}

absl::Status PgJobStore::Release(const std::string& worker_id, const v1::Job& job, absl::Time now) {
  return pool_->Exec(kRelease, {Micros(now), job.id(), worker_id}).status();
}

absl::StatusOr<int> PgJobStore::ReapExpiredLeases(absl::Time now) {
  auto r = pool_->Exec(kReap, {Micros(now)});
  if (!r.ok()) return r.status();
  auto reservations = pool_->Exec(kReapReservations, {Micros(now)});
  if (!reservations.ok()) return reservations.status();
  return r->rows();
}

absl::StatusOr<v1::Job> PgJobStore::Cancel(absl::string_view job_id, absl::string_view requester,
                                           absl::string_view reason, absl::Time now) {
  auto r = pool_->Exec(
      kCancel, {Micros(now), std::string(job_id), std::string(requester), std::string(reason)});
  if (!r.ok()) return r.status();
  if (r->rows() == 1) return JobFromRow(*r, 0);
  auto job = Get(job_id);
  if (!job.ok()) return job.status();
  return absl::FailedPreconditionError(
      absl::StrCat("job '", job_id, "' has already ended (", v1::JobState_Name(job->state()), ")"));
}

absl::StatusOr<v1::Job> PgJobStore::Retry(absl::string_view job_id, absl::Time now) {
  auto r = pool_->Exec(kRetry, {Micros(now), std::string(job_id)});
  if (!r.ok()) return r.status();
  if (r->rows() == 1) return JobFromRow(*r, 0);
  auto job = Get(job_id);
  if (!job.ok()) return job.status();
  return absl::FailedPreconditionError(
      absl::StrCat("job '", job_id, "' is ", v1::JobState_Name(job->state()),
                   "; only FAILED or CANCELLED jobs can be retried"));
}

absl::StatusOr<ProjectJobsCleared> PgJobStore::ClearProject(
    absl::string_view project_id, absl::string_view reason,
    const std::vector<std::string>& delete_ids, absl::Time now) {
  ProjectJobsCleared out;
  absl::Status status = pool_->InTransaction([&](db::Transaction& tx) -> absl::Status {
    out = ProjectJobsCleared{};
    if (!delete_ids.empty()) {
      auto deleted =
          tx.Exec(kDeleteProjectEnded, {std::string(project_id), db::TextArray(delete_ids)});
      if (!deleted.ok()) return deleted.status();
      for (int i = 0; i < deleted->rows(); ++i) {
        out.deleted_job_ids.emplace_back(deleted->Get(i, 0));
        out.events_deleted += deleted->GetInt64(i, 1);
      }
      return absl::OkStatus();
    }
    auto cancelled =
        tx.Exec(kCancelProject, {Micros(now), std::string(project_id), std::string(reason)});
    if (!cancelled.ok()) return cancelled.status();
    out.cancelled = cancelled->rows();
    auto ended = tx.Exec(kEndedInProject, {std::string(project_id)});
    if (!ended.ok()) return ended.status();
    for (int i = 0; i < ended->rows(); ++i) out.ended_job_ids.emplace_back(ended->Get(i, 0));
    // Queued ones were cancelled above: what is left is running.
    auto running = tx.Exec(kRunningInProject, {std::string(project_id)});
    if (!running.ok()) return running.status();
    for (int i = 0; i < running->rows(); ++i) out.running_job_ids.emplace_back(running->Get(i, 0));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<int64_t> PgJobStore::PruneFinished(absl::Time cutoff) {
  auto r = pool_->Exec(kPrune, {Micros(cutoff)});
  if (!r.ok()) return r.status();
  return r->affected();
}

}  // namespace orchestrator::jobs
