#pragma once

#include <string>

#include "absl/time/time.h"

namespace orchestrator {

// A piece of periodic upkeep a component declares with its registration
// (ComponentSpec::periodic_tasks): the scheduler component starts a job of
// `job_kind` on its schedule, and the declaring component's own job engine
// runs it (it registers a handler for the kind). The schedule here is the
// platform's default; an admin may change it (SchedulerService).
struct PeriodicTask {
  std::string id = {};           // stable, e.g. "jobs.prune"
  std::string description = {};  // for people
  std::string job_kind = {};     // e.g. "jobs.prune"
  // Exactly one of: a fixed interval (runs due at multiples of it since the
  // Unix epoch, UTC) or a five-field cron expression in UTC.
  absl::Duration interval = absl::ZeroDuration();
  std::string cron = {};
  // True: a run that comes due while the previous one has not ended starts
  // anyway; false (the default): it is skipped.
  bool allow_overlap = false;
  int max_attempts = 3;
};

}  // namespace orchestrator
