#include "services/jobs/engine/demo_handlers.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "services/common/validation/fields.h"

namespace orchestrator::jobs {
namespace {

constexpr double kMaxSleepSeconds = 3600;
constexpr int kMaxSteps = 1000;
constexpr size_t kMaxFailMessageBytes = 1024;

using Fields = google::protobuf::Map<std::string, google::protobuf::Value>;

// Every key must be one the kind knows, so a typo is not silently ignored.
absl::Status OnlyKnownKeys(const google::protobuf::Struct& params, absl::string_view kind,
                           const std::set<absl::string_view>& known) {
  for (const auto& [key, value] : params.fields()) {
    if (!known.contains(key)) {
      return InvalidField("params",
                          absl::StrCat("'", key.substr(0, 64), "' is not a parameter of ", kind));
    }
  }
  return absl::OkStatus();
}

// The number at `key`, `fallback` when absent; INVALID_ARGUMENT naming
// params.<key> when it is not a number in [min, max].
absl::StatusOr<double> NumberIn(const Fields& fields, const std::string& key, double fallback,
                                double min, double max) {
  auto it = fields.find(key);
  if (it == fields.end()) return fallback;
  const std::string field = absl::StrCat("params.", key);
  if (!it->second.has_number_value()) return InvalidField(field, "must be a number");
  const double v = it->second.number_value();
  if (!(v >= min && v <= max)) {
    return InvalidField(field, absl::StrCat("must be between ", min, " and ", max));
  }
  return v;
}

absl::StatusOr<std::string> TextAt(const Fields& fields, const std::string& key,
                                   const std::string& fallback, size_t max_bytes) {
  auto it = fields.find(key);
  if (it == fields.end()) return fallback;
  const std::string field = absl::StrCat("params.", key);
  if (!it->second.has_string_value()) return InvalidField(field, "must be a string");
  if (auto s = CheckText(field, it->second.string_value(), max_bytes); !s.ok()) return s;
  return it->second.string_value();
}

absl::StatusOr<google::protobuf::Struct> Sleep(JobContext& ctx) {
  auto params = ParseSleepParams(ctx.job().params());
  if (!params.ok()) return params.status();
  const int steps = params->steps;
  for (int i = 1; i <= steps; ++i) {
    if (!ctx.Sleep(absl::Seconds(params->seconds / steps))) return absl::CancelledError("stopped");
    if (auto s = ctx.Progress(100 * i / steps, absl::StrCat("step ", i, " of ", steps)); !s.ok()) {
      return s;
    }
  }
  google::protobuf::Struct result;
  (*result.mutable_fields())["slept_seconds"].set_number_value(params->seconds);
  return result;
}

absl::StatusOr<google::protobuf::Struct> Fail(JobContext& ctx) {
  auto params = ParseFailParams(ctx.job().params());
  if (!params.ok()) return params.status();
  (void)ctx.Log(absl::StrCat("failing with ", absl::StatusCodeToString(params->code),
                             " on attempt ", ctx.job().attempt()));
  return absl::Status(params->code, params->message);
}

}  // namespace

absl::StatusOr<SleepParams> ParseSleepParams(const google::protobuf::Struct& params) {
  if (auto s = OnlyKnownKeys(params, "demo.sleep", {"seconds", "steps"}); !s.ok()) return s;
  SleepParams out;
  auto seconds = NumberIn(params.fields(), "seconds", out.seconds, 0, kMaxSleepSeconds);
  if (!seconds.ok()) return seconds.status();
  auto steps = NumberIn(params.fields(), "steps", out.steps, 1, kMaxSteps);
  if (!steps.ok()) return steps.status();
  if (*steps != std::floor(*steps)) return InvalidField("params.steps", "must be a whole number");
  out.seconds = *seconds;
  out.steps = static_cast<int>(*steps);
  return out;
}

absl::StatusOr<FailParams> ParseFailParams(const google::protobuf::Struct& params) {
  if (auto s = OnlyKnownKeys(params, "demo.fail", {"code", "message"}); !s.ok()) return s;
  auto name = TextAt(params.fields(), "code", "INTERNAL", 64);
  if (!name.ok()) return name.status();
  auto message =
      TextAt(params.fields(), "message", "demo.fail failed as asked", kMaxFailMessageBytes);
  if (!message.ok()) return message.status();
  for (int c = 1; c <= 16; ++c) {
    if (absl::StatusCodeToString(static_cast<absl::StatusCode>(c)) == *name) {
      return FailParams{static_cast<absl::StatusCode>(c), *std::move(message)};
    }
  }
  return InvalidField("params.code",
                      "must be a canonical status code other than OK, e.g. UNAVAILABLE");
}

absl::Status ValidateDemoParams(absl::string_view kind, const google::protobuf::Struct& params) {
  if (kind == "demo.sleep") return ParseSleepParams(params).status();
  if (kind == "demo.fail") return ParseFailParams(params).status();
  if (kind == "demo.noop") return OnlyKnownKeys(params, kind, {});
  return InvalidField("kind", absl::StrCat("'", kind.substr(0, 64),
                                           "' is not one of demo.sleep, demo.fail, demo.noop"));
}

void RegisterDemoHandlers(Worker& worker) {
  worker.Register("demo.sleep", Sleep);
  worker.Register("demo.fail", Fail);
  worker.Register("demo.noop", [](JobContext&) -> absl::StatusOr<google::protobuf::Struct> {
    return google::protobuf::Struct();
  });
}

}  // namespace orchestrator::jobs
