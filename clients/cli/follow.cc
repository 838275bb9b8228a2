#include "clients/cli/follow.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <thread>

#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "services/common/commands/job_event_text.h"

namespace orchestrator::cli {
namespace {

// The stream broke in a way a new call with the last sequence mends.
bool Resumable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

}  // namespace

FollowResult FollowJob(
    const std::shared_ptr<grpc::Channel>& channel,
    const std::function<std::unique_ptr<grpc::ClientContext>(bool deadline)>& context,
    const std::string& job_id, int64_t after_sequence, bool json, absl::Duration give_up,
    std::ostream& out, std::ostream& err) {
  jobs_v1::JobService::Stub stub(channel);
  int64_t last = after_sequence;
  int broken = 0;
  absl::Time broken_since = absl::InfiniteFuture();
  while (true) {
    auto ctx = context(false);
    jobs_v1::WatchJobRequest req;
    req.set_job_id(job_id);
    req.set_after_sequence(last);
    auto reader = stub.WatchJob(ctx.get(), req);
    jobs_v1::WatchJobResponse resp;
    while (reader->Read(&resp)) {
      broken = 0;
      broken_since = absl::InfiniteFuture();
      last = resp.event().sequence();
      if (json) {
        std::string line;
        (void)google::protobuf::util::MessageToJsonString(resp.event(), &line);
        out << line << "\n";
      } else {
        out << commands::EventLine(resp.event(), absl::Now()) << "\n";
      }
      out.flush();
    }
    grpc::Status status = reader->Finish();
    if (status.ok()) break;
    if (!Resumable(status.error_code())) return {status, {}};
    const absl::Time now = absl::Now();
    broken_since = std::min(broken_since, now);
    if (now - broken_since >= give_up) {
      err << "gave up after " << absl::FormatDuration(now - broken_since)
          << " without reaching the server (--give-up " << absl::FormatDuration(give_up)
          << "); the job goes on: resume with 'orchestrator jobs watch " << job_id << " --after "
          << last << "'\n";
      return {status, {}};
    }
    err << "stream interrupted (" << status.error_message() << "); resuming after #" << last
        << "\n";
    // Backs off to one try every 5 s, never past the give-up time.
    const absl::Duration wait = std::min(
        {absl::Milliseconds(500) * ++broken, absl::Seconds(5), broken_since + give_up - now});
    std::this_thread::sleep_for(absl::ToChronoNanoseconds(wait));
  }
  // The stream ended after the terminal event; the job as it ended.
  auto ctx = context(true);
  jobs_v1::GetJobRequest get;
  get.set_job_id(job_id);
  jobs_v1::GetJobResponse job;
  grpc::Status status = stub.GetJob(ctx.get(), get, &job);
  if (!status.ok()) return {status, {}};
  return {grpc::Status::OK, job.job()};
}

}  // namespace orchestrator::cli
