#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace orchestrator {

// What a call says started it, so the jobs it starts record their lineage:
// the PO's turn on a session message (and, on the platform's news of a job,
// that job), or a job of the platform's. Sent as the metadata
// `x-orchestrator-origin`; an agent's `orchestrator` calls send what their
// task was given ($ORCHESTRATOR_ORIGIN). It is a claim: the jobs component
// keeps it only as the job's lineage, never as a right, and shows messages
// only when they are the job owner's.
struct OriginClaim {
  std::string session_id;
  std::string message_id;
  std::string job_id;

  bool empty() const { return session_id.empty() && message_id.empty() && job_id.empty(); }
};

inline constexpr absl::string_view kOriginHeader = "x-orchestrator-origin";
inline constexpr char kOriginEnvironment[] = "ORCHESTRATOR_ORIGIN";
inline constexpr size_t kMaxOriginClaimBytes = 512;

// "session:<id>,message:<id>,job:<id>" (each part optional, in any order;
// ids of [A-Za-z0-9_.-], at most 128 bytes). INVALID_ARGUMENT naming what is
// wrong otherwise; "" is an empty claim.
absl::StatusOr<OriginClaim> ParseOriginClaim(absl::string_view text);
// The form ParseOriginClaim reads.
std::string FormatOriginClaim(const OriginClaim& claim);

}  // namespace orchestrator
