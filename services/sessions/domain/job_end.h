#pragma once

#include <string>

namespace orchestrator::sessions {

// One of a user's jobs ended.
struct JobEnd {
  std::string owner_id;
  std::string job_id;
  std::string kind;     // e.g. "deploy", "rollback"
  std::string outcome;  // "succeeded", "failed" or "was cancelled"
  // Set when the platform started the job on its own (an automatic
  // rollback, …): why, for people.
  std::string started_because;
};

}  // namespace orchestrator::sessions
