#pragma once

#include <functional>
#include <string>

namespace orchestrator::jobs {

// What a running job offers the domain code it runs: progress and log lines
// (the job's events, streamed to whoever watches) and whether to stop.
struct JobHooks {
  std::function<void(int percent, const std::string& message)> progress;
  std::function<void(const std::string& line)> log;
  std::function<bool()> cancelled;
};

}  // namespace orchestrator::jobs
