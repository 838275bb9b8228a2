#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "google/protobuf/struct.pb.h"
#include "services/jobs/engine/worker.h"

namespace orchestrator::jobs {

// Job kinds that exercise the engine before real components exist (enabled
// with --demo_jobs):
//   demo.sleep  params {"seconds": 2, "steps": 4}: progress per step, honours
//               cancellation, result {"slept_seconds": ...};
//   demo.fail   params {"code": "UNAVAILABLE", "message": "..."}: fails with
//               that canonical code (transient codes are retried);
//   demo.noop   no params; does nothing (benchmarks).
void RegisterDemoHandlers(Worker& worker);

// Each kind's params, parsed by the one definition both EnqueueDemoJob and
// the handler use: INVALID_ARGUMENT naming the field ("params.seconds: ...").
struct SleepParams {
  double seconds = 1;  // 0..3600
  int steps = 1;       // 1..1000
};
absl::StatusOr<SleepParams> ParseSleepParams(const google::protobuf::Struct& params);

struct FailParams {
  absl::StatusCode code = absl::StatusCode::kInternal;  // any canonical code but OK
  std::string message;                                  // at most 1 KiB
};
absl::StatusOr<FailParams> ParseFailParams(const google::protobuf::Struct& params);

// OK when `params` are valid for demo `kind`; INVALID_ARGUMENT naming the
// field (or `kind` when it is not a demo kind) otherwise.
absl::Status ValidateDemoParams(absl::string_view kind, const google::protobuf::Struct& params);

}  // namespace orchestrator::jobs
