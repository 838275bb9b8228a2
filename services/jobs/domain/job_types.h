#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "orchestrator/agents/v1/agents.pb.h"
#include "orchestrator/jobs/v1/jobs.pb.h"
#include "services/common/auth/principal.h"

namespace orchestrator::jobs {

// What a component asks the engine to run.
struct EnqueueRequest {
  std::string kind;
  std::string owner_id;
  std::string project_id;
  google::protobuf::Struct params;
  std::string request_id;                       // idempotency key per owner; "" = none
  int32_t priority = 0;                         // higher runs first
  absl::Time run_after = absl::InfinitePast();  // InfinitePast = now
  int32_t max_attempts = 5;
  std::string concurrency_key;  // at most one RUNNING job per key; "" = none
  v1::JobOrigin origin;         // what started it (OriginOf, PlatformOrigin, …)
};

// The origin of a job `caller` starts: what their call says started it
// (the PO's turn on a message, on a job's news), else their own call; the
// actor is the user, the agent's worker, or "platform" for the mesh.
v1::JobOrigin OriginOf(const Principal& caller);
// The origin of a job the platform starts on its own because of `job_id`
// (an automatic rollback, a fix run after a failed deploy).
v1::JobOrigin PlatformOrigin(const std::string& job_id);
// The actor name of the mesh acting on its own.
inline constexpr char kPlatformActor[] = "platform";

// A job's result key holding the model usage it consumed (an
// orchestrator.agents.v1.Usage as JSON): what ListProjectHistory shows.
inline constexpr char kUsageResult[] = "usage";
// Records `usage` in a job's result.
void SetUsage(const agents::v1::Usage& usage, google::protobuf::Struct* result);
// The model usage a job's result records; empty when none.
agents::v1::Usage UsageOf(const google::protobuf::Struct& result);
// Adds `more` to `*sum`, field by field.
void AddUsage(const agents::v1::Usage& more, agents::v1::Usage* sum);

// What a job made, from its result, in that order: url, commit_sha,
// release_id, run_id, repository_url; each only when it is one printable
// ASCII token of at most 300 bytes (what a job wrote must not become words
// of anyone's prompt).
std::vector<std::pair<std::string, std::string>> MadeOf(const google::protobuf::Struct& result);

// The param of a job the platform started on its own (an automatic
// rollback, …) rather than at a user's request: why, for people. The
// sessions component tells the job's owner when such a job ends.
inline constexpr char kStartedBecauseParam[] = "started_because";

// A job that FAILED with FAILED_PRECONDITION whose error message starts with this asks its owner to
// step in (an engineering run whose tests keep failing).
inline constexpr char kNeedsHumanPrefix[] = "needs a human";

// Limits applied when claiming.
struct ClaimLimits {
  // kind → at most this many RUNNING jobs per owner (e.g. deploy → 3).
  std::vector<std::pair<std::string, int>> per_owner;
};

// How long to wait before attempt n+1 after attempt n failed transiently:
// base·2^(n-1), capped, then scaled by a jitter factor in [0.5, 1].
struct BackoffPolicy {
  absl::Duration base = absl::Seconds(1);
  absl::Duration cap = absl::Minutes(5);
  absl::Duration Delay(int32_t attempt, double jitter01) const;
};

// Permanent failures fail the job at once; the rest are retried.
bool IsTransient(absl::StatusCode code);

bool IsTerminal(v1::JobState state);

// Bounds on what handlers write: no request field bounds these, so one
// handler's output can never outgrow a page of ListJobs or ListJobEvents.
inline constexpr size_t kMaxResultBytes = 64 * 1024;
inline constexpr size_t kMaxErrorMessageBytes = 4 * 1024;
inline constexpr size_t kMaxProgressMessageBytes = 1024;
inline constexpr size_t kMaxLogTextBytes = 16 * 1024;

// A result over kMaxResultBytes becomes {"truncated": true, "bytes": N}.
google::protobuf::Struct BoundedResult(google::protobuf::Struct result);
// The error with its message cut to kMaxErrorMessageBytes (ending in "…").
absl::Status BoundedError(const absl::Status& error);
// A progress or log event with its text cut (ending in "…").
v1::JobEvent BoundedEvent(v1::JobEvent event);

}  // namespace orchestrator::jobs
