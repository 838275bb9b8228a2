#include "clients/cli/follow.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "clients/cli/format.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"

namespace orchestrator::cli {
namespace {

std::string Label(jobs_v1::JobState s) {
  return EnumLabel(jobs_v1::JobState_descriptor()->FindValueByNumber(s));
}

// The stream broke in a way a new call with the last sequence mends.
bool Resumable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

}  // namespace

std::string EventDetail(const jobs_v1::JobEvent& e, absl::Time now) {
  switch (e.payload_case()) {
    case jobs_v1::JobEvent::kStateChanged: {
      const auto& c = e.state_changed();
      std::string out = c.from_state() == jobs_v1::JOB_STATE_UNSPECIFIED
                            ? Label(c.to_state())  // the job was created
                            : absl::StrCat(Label(c.from_state()), " → ", Label(c.to_state()));
      if (c.to_state() == jobs_v1::JOB_STATE_RUNNING)
        absl::StrAppend(&out, " (attempt ", c.attempt(), ")");
      if (c.has_error()) absl::StrAppend(&out, "  ", FormatMessage(c.error(), now, true));
      if (c.to_state() == jobs_v1::JOB_STATE_QUEUED && c.has_run_after()) {
        absl::StrAppend(&out, "  retry ",
                        AgoText(absl::FromUnixSeconds(c.run_after().seconds()), now));
      }
      if (!c.reason().empty() && !c.has_error()) absl::StrAppend(&out, "  ", c.reason());
      return out;
    }
    case jobs_v1::JobEvent::kProgress:
      return absl::StrCat(e.progress().percent(), "%",
                          e.progress().message().empty() ? "" : "  " + e.progress().message());
    case jobs_v1::JobEvent::kLogLine: {
      const auto& line = e.log_line();
      std::string from = line.source();
      if (from.empty() && line.stream() != common::v1::LOG_STREAM_UNSPECIFIED) {
        from = EnumLabel(common::v1::LogStream_descriptor()->FindValueByNumber(line.stream()));
      }
      return from.empty() ? line.text() : absl::StrCat(from, ": ", line.text());
    }
    case jobs_v1::JobEvent::kResult:
      return FormatMessage(e.result().result(), now, true);
    case jobs_v1::JobEvent::kCancelRequested:
      return absl::StrCat("cancel requested", e.cancel_requested().reason().empty()
                                                  ? ""
                                                  : ": " + e.cancel_requested().reason());
    default:
      return "";
  }
}

std::string EventLine(const jobs_v1::JobEvent& e, absl::Time now) {
  const std::string type =
      EnumLabel(jobs_v1::JobEventType_descriptor()->FindValueByNumber(e.type()));
  return absl::StrCat(ClockText(absl::FromUnixSeconds(e.create_time().seconds())), "  #",
                      e.sequence(), "  ", type, "  ", EventDetail(e, now));
}

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
        out << EventLine(resp.event(), absl::Now()) << "\n";
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
