#include "services/jobs/domain/job_types.h"

#include <algorithm>
#include <cmath>

namespace orchestrator::jobs {

absl::Duration BackoffPolicy::Delay(int32_t attempt, double jitter01) const {
  const int32_t exponent = std::clamp(attempt - 1, 0, 30);
  absl::Duration raw = std::min(cap, base * std::pow(2.0, exponent));
  return raw * (0.5 + 0.5 * std::clamp(jitter01, 0.0, 1.0));
}

bool IsTransient(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
      return true;
    default:
      return false;
  }
}

bool IsTerminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

}  // namespace orchestrator::jobs
