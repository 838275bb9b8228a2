#include "services/jobs/engine/demo_handlers.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace orchestrator::jobs {
namespace {

double Number(const google::protobuf::Struct& s, const char* key, double fallback) {
  auto it = s.fields().find(key);
  if (it == s.fields().end() || !it->second.has_number_value()) return fallback;
  return it->second.number_value();
}

std::string Text(const google::protobuf::Struct& s, const char* key, const std::string& fallback) {
  auto it = s.fields().find(key);
  if (it == s.fields().end() || !it->second.has_string_value()) return fallback;
  return it->second.string_value();
}

absl::StatusOr<google::protobuf::Struct> Sleep(JobContext& ctx) {
  const double seconds = Number(ctx.job().params(), "seconds", 1);
  const int steps = static_cast<int>(Number(ctx.job().params(), "steps", 1));
  if (!(seconds >= 0 && seconds <= 3600)) {
    return absl::InvalidArgumentError("params.seconds must be between 0 and 3600");
  }
  if (steps < 1 || steps > 1000) return absl::InvalidArgumentError("params.steps must be 1..1000");
  for (int i = 1; i <= steps; ++i) {
    if (!ctx.Sleep(absl::Seconds(seconds / steps))) return absl::CancelledError("stopped");
    if (auto s = ctx.Progress(100 * i / steps, absl::StrCat("step ", i, " of ", steps)); !s.ok()) {
      return s;
    }
  }
  google::protobuf::Struct result;
  (*result.mutable_fields())["slept_seconds"].set_number_value(seconds);
  return result;
}

absl::StatusOr<google::protobuf::Struct> Fail(JobContext& ctx) {
  const std::string name = Text(ctx.job().params(), "code", "INTERNAL");
  const std::string message = Text(ctx.job().params(), "message", "demo.fail failed as asked");
  for (int c = 1; c <= 16; ++c) {
    if (absl::StatusCodeToString(static_cast<absl::StatusCode>(c)) == name) {
      (void)ctx.Log(absl::StrCat("failing with ", name, " on attempt ", ctx.job().attempt()));
      return absl::Status(static_cast<absl::StatusCode>(c), message);
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("params.code: unknown code '", name, "'"));
}

}  // namespace

void RegisterDemoHandlers(Worker& worker) {
  worker.Register("demo.sleep", Sleep);
  worker.Register("demo.fail", Fail);
  worker.Register("demo.noop", [](JobContext&) -> absl::StatusOr<google::protobuf::Struct> {
    return google::protobuf::Struct();
  });
}

}  // namespace orchestrator::jobs
