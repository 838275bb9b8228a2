#pragma once

#include "services/jobs/domain/job_hooks.h"
#include "services/jobs/engine/worker.h"

namespace orchestrator::jobs {

// The hooks of a job a handler runs (they live as long as `job` does).
inline JobHooks HooksOf(JobContext& job) {
  return {[&job](int percent, const std::string& message) { (void)job.Progress(percent, message); },
          [&job](const std::string& line) { (void)job.Log(line); },
          [&job] { return job.cancelled(); }};
}

}  // namespace orchestrator::jobs
