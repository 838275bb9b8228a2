#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "orchestrator/jobs/v1/jobs.pb.h"
#include "orchestrator/sessions/v1/sessions.pb.h"

namespace orchestrator::jobs {

// Where the history reads the session messages its jobs name as their
// origin (the sessions component, over its stub).
class SessionMessages {
 public:
  virtual ~SessionMessages() = default;
  // The owner's messages among `ids`; others' are left out.
  virtual absl::StatusOr<std::vector<sessions::v1::SessionMessage>> Lookup(
      const std::string& owner_id, const std::vector<std::string>& ids) = 0;
};
using SessionMessagesPtr = std::shared_ptr<SessionMessages>;

// How many of a project's newest jobs a history reads.
inline constexpr int kMaxHistoryJobs = 1000;

// A project's history from its jobs (any order) and the messages they name:
// each job a step whose parent is the message whose turn started it, else
// the job that led to it; each message a step whose parent is, for the
// platform's news, the job it told of. Oldest first. With `leading_to` (a
// job id, or a release id a job's result names), only that step and those
// it came from; NOT_FOUND when no step is it. The newest `page_size` steps
// (0: 200) are kept; the usage of those shown is summed.
absl::StatusOr<v1::ListProjectHistoryResponse> BuildProjectHistory(
    const std::vector<v1::Job>& jobs, const std::vector<sessions::v1::SessionMessage>& messages,
    const std::string& leading_to, int page_size);

// The message ids the jobs name as their origin, each once, newest job's
// first.
std::vector<std::string> OriginMessageIds(const std::vector<v1::Job>& jobs);

}  // namespace orchestrator::jobs
