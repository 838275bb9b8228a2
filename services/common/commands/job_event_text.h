#pragma once

#include <string>

#include "absl/time/time.h"
#include "orchestrator/jobs/v1/jobs.pb.h"

namespace orchestrator::commands {

// What an event says, for people: "queued → running (attempt 1)",
// "33% step 1 of 3", "stdout: building…", "result {"ok":true}".
std::string EventDetail(const jobs::v1::JobEvent& event, absl::Time now);
// "10:12:03  #3  progress  33% step 1 of 3"
std::string EventLine(const jobs::v1::JobEvent& event, absl::Time now);

}  // namespace orchestrator::commands
