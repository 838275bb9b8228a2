#pragma once

#include <string>

namespace orchestrator::sessions {

// One of a user's jobs ended.
struct JobEnd {
  std::string owner_id;
  std::string job_id;
  std::string kind;  // e.g. "deploy", "rollback"
  std::string project_id;
  // What it made, from its result, for people: "url http://…; commit 3f2a…"
  // ("" when nothing of note).
  std::string made;
  std::string outcome;  // "succeeded", "failed" or "was cancelled"
  // Set when the platform started the job on its own (an automatic
  // rollback, …): why, for people.
  std::string started_because;
  // When it failed: why (the job's error message, at most 4 KiB).
  std::string error_message;
  // It failed asking its owner to step in (FAILED_PRECONDITION, its message
  // starting with jobs::kNeedsHumanPrefix): the owner is told even when no
  // session is open.
  bool needs_human = false;
};

}  // namespace orchestrator::sessions
