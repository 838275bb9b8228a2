#include "services/jobs/domain/job_types.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "services/common/validation/request_bounds.h"

namespace orchestrator::jobs {

absl::Duration BackoffPolicy::Delay(int32_t attempt, double jitter01) const {
  const int32_t exponent = std::clamp(attempt - 1, 0, 30);
  absl::Duration raw = std::min(cap, base * std::pow(2.0, exponent));
  return raw * (0.5 + 0.5 * std::clamp(jitter01, 0.0, 1.0));
}

v1::JobOrigin OriginOf(const Principal& caller) {
  v1::JobOrigin origin;
  switch (caller.kind) {
    case PrincipalKind::kUser:
      origin.set_actor(caller.user_id);
      break;
    case PrincipalKind::kAgent:
      origin.set_actor(caller.worker_id.empty() ? caller.user_id : caller.worker_id);
      break;
    case PrincipalKind::kMesh:
      origin.set_actor(kPlatformActor);
      break;
  }
  const OriginClaim& claim = caller.origin;
  origin.set_kind(!claim.job_id.empty()       ? v1::JOB_ORIGIN_KIND_JOB
                  : !claim.message_id.empty() ? v1::JOB_ORIGIN_KIND_SESSION_MESSAGE
                                              : v1::JOB_ORIGIN_KIND_USER_CALL);
  origin.set_session_id(claim.session_id);
  origin.set_message_id(claim.message_id);
  origin.set_job_id(claim.job_id);
  return origin;
}

void SetUsage(const agents::v1::Usage& usage, google::protobuf::Struct* result) {
  std::string json;
  google::protobuf::Struct value;
  if (!google::protobuf::util::MessageToJsonString(usage, &json).ok() ||
      !google::protobuf::util::JsonStringToMessage(json, &value).ok()) {
    return;
  }
  *(*result->mutable_fields())[kUsageResult].mutable_struct_value() = std::move(value);
}

agents::v1::Usage UsageOf(const google::protobuf::Struct& result) {
  agents::v1::Usage usage;
  auto it = result.fields().find(kUsageResult);
  if (it == result.fields().end() || !it->second.has_struct_value()) return usage;
  std::string json;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::MessageToJsonString(it->second.struct_value(), &json).ok() ||
      !google::protobuf::util::JsonStringToMessage(json, &usage, options).ok()) {
    return agents::v1::Usage();
  }
  return usage;
}

void AddUsage(const agents::v1::Usage& more, agents::v1::Usage* sum) {
  // Saturating: what an agent reports is not to be trusted to stay small.
  const auto add = [](auto a, auto b) {
    using T = decltype(a);
    T out;
    if (__builtin_add_overflow(a, b, &out)) {
      return b > 0 ? std::numeric_limits<T>::max() : std::numeric_limits<T>::min();
    }
    return out;
  };
  sum->set_input_tokens(add(sum->input_tokens(), more.input_tokens()));
  sum->set_output_tokens(add(sum->output_tokens(), more.output_tokens()));
  sum->set_cache_read_tokens(add(sum->cache_read_tokens(), more.cache_read_tokens()));
  sum->set_cache_write_tokens(add(sum->cache_write_tokens(), more.cache_write_tokens()));
  sum->set_cost_usd_micros(add(sum->cost_usd_micros(), more.cost_usd_micros()));
  sum->set_turns(add(sum->turns(), more.turns()));
}

std::vector<std::pair<std::string, std::string>> MadeOf(const google::protobuf::Struct& result) {
  std::vector<std::pair<std::string, std::string>> made;
  for (const char* field : {"url", "commit_sha", "release_id", "run_id", "repository_url"}) {
    auto it = result.fields().find(field);
    if (it == result.fields().end()) continue;
    const std::string& value = it->second.string_value();
    const bool token =
        !value.empty() && value.size() <= 300 &&
        std::all_of(value.begin(), value.end(), [](char c) { return c > 0x20 && c < 0x7f; });
    if (token) made.emplace_back(field, value);
  }
  return made;
}

v1::JobOrigin PlatformOrigin(const std::string& job_id) {
  v1::JobOrigin origin;
  origin.set_kind(v1::JOB_ORIGIN_KIND_JOB);
  origin.set_actor(kPlatformActor);
  origin.set_job_id(job_id);
  return origin;
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
