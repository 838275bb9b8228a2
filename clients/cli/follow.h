#pragma once

#include <grpcpp/channel.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "absl/time/time.h"
#include "orchestrator/jobs/v1/jobs.pb.h"

namespace orchestrator::cli {

namespace jobs_v1 = ::orchestrator::jobs::v1;

// Streams a job's events from `after_sequence` to its end, printing each
// (one JSON object per line with `json`), and resumes from the last one
// seen when the stream breaks, until the server has been unreachable for
// `give_up` (then says so on `err`). Returns the final job, or the error
// that stopped it; `context` makes each call's context (metadata, no
// deadline).
struct FollowResult {
  grpc::Status status;
  jobs_v1::Job job;  // when status is OK
};
FollowResult FollowJob(
    const std::shared_ptr<grpc::Channel>& channel,
    const std::function<std::unique_ptr<grpc::ClientContext>(bool deadline)>& context,
    const std::string& job_id, int64_t after_sequence, bool json, absl::Duration give_up,
    std::ostream& out, std::ostream& err);

}  // namespace orchestrator::cli
