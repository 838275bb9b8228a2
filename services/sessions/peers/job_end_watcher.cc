#include "services/sessions/peers/job_end_watcher.h"

#include <algorithm>
#include <atomic>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "services/common/peers/mesh_call.h"
#include "services/jobs/domain/job_types.h"
#include "spdlog/spdlog.h"

namespace orchestrator::sessions {
namespace {

namespace jv1 = ::orchestrator::jobs::v1;

// How many ends are remembered to tell each once.
constexpr size_t kRemembered = 4096;

// The word the session manager tells the agent, for a terminal state.
const char* OutcomeOf(jv1::JobState state) {
  switch (state) {
    case jv1::JOB_STATE_SUCCEEDED:
      return "succeeded";
    case jv1::JOB_STATE_FAILED:
      return "failed";
    case jv1::JOB_STATE_CANCELLED:
      return "was cancelled";
    default:
      return nullptr;
  }
}

}  // namespace

// One WatchJobs call. Each change read is handled on the dispatcher before
// the next read starts, so a slow handler slows the stream (the server ends
// a watcher that falls too far behind) rather than queueing without bound.
class JobEndWatcher::Stream final : public grpc::ClientReadReactor<jv1::WatchJobsResponse> {
 public:
  Stream(JobEndWatcher* watcher, std::shared_ptr<jv1::JobService::StubInterface> stub)
      : watcher_(watcher), stub_(std::move(stub)) {}

  void Begin(jv1::JobService::StubInterface::async_interface& stub) {
    // No one to act for: the mesh itself sees every owner's jobs.
    PrepareMeshCall(ctx_, *watcher_->mesh_, watcher_->options_.stream_lifetime);
    stub.WatchJobs(&ctx_, &request_, this);
    StartRead(&change_);
    StartCall();
  }
  void Cancel() { ctx_.TryCancel(); }
  void AwaitDone() { done_.WaitForNotification(); }
  // Whether the watch was in place (the server answered with its headers).
  bool connected() const { return connected_; }
  const grpc::Status& status() const { return status_; }

  void OnReadInitialMetadataDone(bool ok) override {
    if (!ok) return;
    connected_ = true;
    watcher_->Connected(stub_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    AddHold();
    absl::Status queued = watcher_->dispatcher_.Submit([this] {
      watcher_->Handle(change_);
      StartRead(&change_);
      RemoveHold();
    });
    if (!queued.ok()) {
      ctx_.TryCancel();
      RemoveHold();
    }
  }

  void OnDone(const grpc::Status& status) override {
    status_ = status;
    done_.Notify();
  }

 private:
  JobEndWatcher* const watcher_;
  const std::shared_ptr<jv1::JobService::StubInterface> stub_;
  grpc::ClientContext ctx_;
  const jv1::WatchJobsRequest request_;
  jv1::WatchJobsResponse change_;
  std::atomic<bool> connected_{false};
  grpc::Status status_;
  absl::Notification done_;
};

JobEndWatcher::JobEndWatcher(std::function<StubPtr()> make_stub, MeshCredentialPtr mesh,
                             OnJobEnded on_job_ended, Options options)
    : make_stub_(std::move(make_stub)),
      mesh_(std::move(mesh)),
      on_job_ended_(std::move(on_job_ended)),
      options_(options) {}

JobEndWatcher::~JobEndWatcher() { Stop(); }

void JobEndWatcher::Start() {
  absl::MutexLock lock(&mu_);
  if (thread_.joinable() || stopping_) return;
  unwatched_since_ = absl::Now() - options_.first_catch_up;
  thread_ = std::thread([this] { Run(); });
}

void JobEndWatcher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      stopping_ = true;
      stop_.Notify();
    }
    if (stream_ != nullptr) stream_->Cancel();
  }
  if (thread_.joinable()) thread_.join();
  dispatcher_.Shutdown();
}

void JobEndWatcher::Run() {
  auto backoff = options_.min_backoff;
  while (true) {
    // Shared with the catch-up this stream's connection starts.
    std::shared_ptr<jv1::JobService::StubInterface> stub = make_stub_();
    auto* async = stub ? stub->async() : nullptr;
    if (async == nullptr) {
      spdlog::error("sessions: job ends are not watched: the JobService stub has no callback API");
      return;
    }
    Stream stream(this, stub);
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      stream_ = &stream;
    }
    stream.Begin(*async);
    stream.AwaitDone();
    {
      absl::MutexLock lock(&mu_);
      stream_ = nullptr;
      if (stopping_) return;
    }
    const grpc::Status& status = stream.status();
    if (stream.connected()) {
      {
        absl::MutexLock lock(&mu_);
        // A little before now: an end committed as the stream went is caught.
        unwatched_since_ = absl::Now() - absl::Seconds(1);
      }
      backoff = options_.min_backoff;
      // Its lifetime ran out: the next one at once.
      if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) continue;
    }
    {
      absl::MutexLock lock(&mu_);
      if (!outage_) {
        outage_ = true;
        spdlog::warn(
            "sessions: job ends are not watched: JobService.WatchJobs ended ({}: {}); watching "
            "again once it is back",
            static_cast<int>(status.error_code()), status.error_message());
      }
    }
    if (stop_.WaitForNotificationWithTimeout(absl::FromChrono(backoff))) return;
    if (!stream.connected()) backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

void JobEndWatcher::Connected(std::shared_ptr<jv1::JobService::StubInterface> stub) {
  absl::Time since;
  {
    absl::MutexLock lock(&mu_);
    since = unwatched_since_;
    if (outage_) {
      outage_ = false;
      spdlog::info("sessions: watching job ends again");
    }
  }
  // In order with the changes the new stream reads (same dispatcher).
  (void)dispatcher_.Submit([this, since, stub = std::move(stub)] { CatchUp(*stub, since); });
}

void JobEndWatcher::CatchUp(jv1::JobService::StubInterface& stub, absl::Time since) {
  int told = 0;
  for (jv1::JobState state :
       {jv1::JOB_STATE_SUCCEEDED, jv1::JOB_STATE_FAILED, jv1::JOB_STATE_CANCELLED}) {
    jv1::ListJobsRequest req;
    req.set_state(state);
    req.set_page_size(std::min(options_.catch_up_jobs, 500));
    jv1::ListJobsResponse page;
    grpc::ClientContext ctx;
    PrepareMeshCall(ctx, *mesh_, std::chrono::seconds(10));
    if (grpc::Status s = stub.ListJobs(&ctx, req, &page); !s.ok()) {
      spdlog::warn("sessions: catching up with the jobs that ended meanwhile failed: {}",
                   s.error_message());
      return;
    }
    for (const jv1::Job& job : page.jobs()) {
      const absl::Time ended = absl::FromUnixSeconds(job.update_time().seconds()) +
                               absl::Nanoseconds(job.update_time().nanos());
      if (ended < since) continue;
      Tell(job, absl::StrCat(job.id(), "@", job.attempt(), "#", state), state);
      ++told;
    }
  }
  if (told > 0) spdlog::info("sessions: told {} job ends that came while unwatched", told);
}

void JobEndWatcher::Handle(const jv1::WatchJobsResponse& change) {
  const jv1::JobEvent& event = change.event();
  if (event.type() != jv1::JOB_EVENT_TYPE_STATE_CHANGED) return;
  const jv1::JobState ended = event.state_changed().to_state();
  jv1::Job job = change.job();
  if (job.id().empty()) job.set_id(event.job_id());
  // The error as of this change: the job was read after it, and a retry
  // may have moved on since.
  if (event.state_changed().has_error()) *job.mutable_error() = event.state_changed().error();
  Tell(job, absl::StrCat(job.id(), "@", job.attempt(), "#", ended), ended);
}

void JobEndWatcher::Tell(const jv1::Job& job, const std::string& key, jv1::JobState ended) {
  const char* outcome = OutcomeOf(ended);
  if (outcome == nullptr || job.owner_id().empty() || job.id().empty()) return;
  {
    absl::MutexLock lock(&mu_);
    if (!told_.insert(key).second) return;
    told_order_.push_back(key);
    if (told_order_.size() > kRemembered) {
      told_.erase(told_order_.front());
      told_order_.pop_front();
    }
  }
  JobEnd end;
  end.owner_id = job.owner_id();
  end.job_id = job.id();
  end.kind = job.kind();
  end.project_id = job.project_id();
  end.outcome = outcome;
  // What a PO needs for its next step (and to tell the user), bounded.
  std::vector<std::string> made;
  for (const auto& [field, value] : jobs::MadeOf(job.result())) {
    made.push_back(absl::StrCat(field, " ", value));
  }
  end.made = absl::StrJoin(made, "; ");
  if (auto it = job.params().fields().find(jobs::kStartedBecauseParam);
      it != job.params().fields().end()) {
    end.started_because = it->second.string_value();
  }
  if (end.started_because.empty() && job.origin().kind() == jv1::JOB_ORIGIN_KIND_JOB &&
      job.origin().actor() == jobs::kPlatformActor) {
    // A step of another job of the platform's (a fix's engineering run).
    end.started_because = absl::StrCat("a step of its job ", job.origin().job_id());
  }
  if (ended == jv1::JOB_STATE_FAILED) {
    end.error_message = job.error().message();
    end.needs_human =
        job.error().code() == static_cast<int>(absl::StatusCode::kFailedPrecondition) &&
        absl::StartsWith(end.error_message, jobs::kNeedsHumanPrefix);
  }
  on_job_ended_(end);
}

}  // namespace orchestrator::sessions
