#include "services/jobs/domain/job_types.h"

#include <algorithm>
#include <cmath>

#include "services/common/validation/request_bounds.h"

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

google::protobuf::Struct BoundedResult(google::protobuf::Struct result) {
  const size_t bytes = result.ByteSizeLong();
  if (bytes <= kMaxResultBytes) return result;
  google::protobuf::Struct marker;
  (*marker.mutable_fields())["truncated"].set_bool_value(true);
  (*marker.mutable_fields())["bytes"].set_number_value(static_cast<double>(bytes));
  return marker;
}

absl::Status BoundedError(const absl::Status& error) {
  if (error.message().size() <= kMaxErrorMessageBytes) return error;
  return absl::Status(error.code(), Truncated(error.message(), kMaxErrorMessageBytes));
}

v1::JobEvent BoundedEvent(v1::JobEvent event) {
  if (event.has_progress() && event.progress().message().size() > kMaxProgressMessageBytes) {
    event.mutable_progress()->set_message(
        Truncated(event.progress().message(), kMaxProgressMessageBytes));
  }
  if (event.has_log_line()) {
    auto* line = event.mutable_log_line();
    if (line->text().size() > kMaxLogTextBytes) {
      line->set_text(Truncated(line->text(), kMaxLogTextBytes));
    }
    if (line->source().size() > 128) line->set_source(Truncated(line->source(), 128));
  }
  return event;
}

bool IsTerminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

}  // namespace orchestrator::jobs
