#pragma once

#include "services/jobs/engine/worker.h"

namespace orchestrator::jobs {

// Job kinds that exercise the engine before real components exist (enabled
// with --demo_jobs):
//   demo.sleep  params {"seconds": 2, "steps": 4}: progress per step, honours
//               cancellation, result {"slept_seconds": ...};
//   demo.fail   params {"code": "UNAVAILABLE", "message": "..."}: fails with
//               that canonical code (transient codes are retried);
//   demo.noop   does nothing (benchmarks).
void RegisterDemoHandlers(Worker& worker);

inline constexpr const char* kDemoKinds[] = {"demo.sleep", "demo.fail", "demo.noop"};

}  // namespace orchestrator::jobs
