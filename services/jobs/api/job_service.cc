#include "services/jobs/api/job_service.h"

#include <deque>

#include "absl/strings/str_cat.h"
#include "services/common/peers/serve_for_project.h"
#include "services/common/rpc/serve_unary.h"
#include "services/common/validation/fields.h"
#include "services/jobs/engine/demo_handlers.h"

namespace orchestrator::jobs {
namespace {

using EventPtr = std::shared_ptr<const v1::JobEvent>;
constexpr int kReplayPage = 100;

bool EndsTheJob(const v1::JobEvent& e) {
  return e.type() == v1::JOB_EVENT_TYPE_STATE_CHANGED && IsTerminal(e.state_changed().to_state());
}

// What both watch streams share: each owns itself until OnDone, finishes
// exactly once, and drops its hub subscription when the call is over.
template <typename Response, typename Derived>
class WatchStream : public grpc::ServerWriteReactor<Response>,
                    public std::enable_shared_from_this<Derived> {
 public:
  void OnCancel() override { End(absl::CancelledError("client cancelled")); }

  void OnDone() override {
    uint64_t subscription;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      subscription = subscribed_ ? subscription_ : 0;
      subscribed_ = false;
    }
    if (subscription) shared_->hub->Unsubscribe(subscription);
    self_.reset();  // the last reference may go with it
  }

 protected:
  explicit WatchStream(std::shared_ptr<const JobServiceImpl::Shared> shared)
      : shared_(std::move(shared)) {}

  void End(const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    EndLocked(status);
  }

  void EndLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || done_) return;
    finished_ = true;
    this->Finish(ToGrpcStatus(status));
  }

  void SetSubscriptionLocked(uint64_t handle) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    subscription_ = handle;
    subscribed_ = true;
  }

  std::shared_ptr<const JobServiceImpl::Shared> shared_;
  std::shared_ptr<Derived> self_;  // alive until OnDone

  absl::Mutex mu_;
  // Whether a write is in flight, and how the call ends.
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool subscribed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t subscription_ ABSL_GUARDED_BY(mu_) = 0;
  Response response_;
};

// WatchJob: replays what the client has not seen, then live events, then
// ends after the terminal event. Live events arrive from the hub; when they
// skip a sequence, or the client reads slower than they come, the stream
// reads from the database from its last sequence instead of buffering, so
// the client sees every event once, in order, and memory stays bounded.
class WatchJobReactor final : public WatchStream<v1::WatchJobResponse, WatchJobReactor> {
 public:
  WatchJobReactor(std::shared_ptr<const JobServiceImpl::Shared> shared,
                  grpc::CallbackServerContext* ctx, v1::WatchJobRequest req)
      : WatchStream(std::move(shared)), ctx_(ctx), req_(std::move(req)) {}

  void Begin() {
    self_ = shared_from_this();
    auto caller = CallerOf(ctx_);
    if (!caller.ok()) return End(caller.status());
    if (req_.after_sequence() < 0) {
      return End(InvalidField("after_sequence", "must not be negative"));
    }
    auto self = self_;
    absl::Status queued = shared_->executor->Submit([self, caller = *caller] {
      auto job = self->shared_->board->Get(caller, self->req_.job_id());
      if (!job.ok()) return self->End(job.status());
      if (self->req_.after_sequence() > job->last_event_sequence()) {
        return self->End(absl::OutOfRangeError(
            absl::StrCat("after_sequence: the job's last event is ", job->last_event_sequence())));
      }
      absl::MutexLock lock(&self->mu_);
      if (self->finished_ || self->done_) return;  // the call ended while this waited
      self->enqueued_ = self->req_.after_sequence();
      // A terminal event older than this (before a RetryJob) does not end the watch.
      self->ends_from_ = job->last_event_sequence();
      if (IsTerminal(job->state()) && self->enqueued_ >= job->last_event_sequence()) {
        return self->EndLocked(absl::OkStatus());  // nothing left to see
      }
      std::weak_ptr<WatchJobReactor> weak = self;
      self->subscription_ =
          self->shared_->hub->SubscribeJob(self->req_.job_id(), self->enqueued_,
                                           JobEventHub::JobSubscriber{[weak](const EventPtr& e) {
                                                                        if (auto s = weak.lock())
                                                                          s->OnLive(e);
                                                                      },
                                                                      [weak] {
                                                                        if (auto s = weak.lock())
                                                                          s->Resync();
                                                                      }});
      self->subscribed_ = true;
      // Replay what happened before we subscribed, here on the executor
      // already, rather than queueing a second task per new watcher.
      self->fetching_ = true;  // live events meanwhile ask for another read
      const int64_t after = self->enqueued_;
      self->mu_.Unlock();
      auto events = self->shared_->board->EventsAfter(self->req_.job_id(), after, kReplayPage);
      self->mu_.Lock();
      self->AcceptReplayLocked(std::move(events));
    });
    if (!queued.ok()) End(queued);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) return EndLocked(absl::CancelledError("client went away"));
    if (wrote_terminal_) return EndLocked(absl::OkStatus());
    PumpLocked();
  }

 private:
  void OnLive(const EventPtr& e) {
    absl::MutexLock lock(&mu_);
    if (e->sequence() <= enqueued_) return;  // already have it
    if (e->sequence() == enqueued_ + 1 && !need_replay_ && !fetching_ &&
        pending_.size() < shared_->options.max_pending_per_watcher) {
      pending_.push_back(e);
      enqueued_ = e->sequence();
    } else {
      need_replay_ = true;  // a gap, or we are behind: read it from the database
    }
    PumpLocked();
  }

  void Resync() {
    absl::MutexLock lock(&mu_);
    need_replay_ = true;
    PumpLocked();
  }

  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || writing_) return;
    if (!pending_.empty()) {
      EventPtr next = std::move(pending_.front());
      pending_.erase(pending_.begin());  // at most a page: cheap, and idle costs nothing
      wrote_terminal_ = EndsTheJob(*next) && next->sequence() >= ends_from_;
      *response_.mutable_event() = *next;
      writing_ = true;
      StartWrite(&response_);
      return;
    }
    if (!need_replay_ || fetching_) return;
    need_replay_ = false;
    fetching_ = true;
    auto self = self_;
    const int64_t after = enqueued_;
    absl::Status queued = shared_->executor->Submit([self, after] {
      auto events = self->shared_->board->EventsAfter(self->req_.job_id(), after, kReplayPage);
      absl::MutexLock lock(&self->mu_);
      self->AcceptReplayLocked(std::move(events));
    });
    if (!queued.ok()) {
      fetching_ = false;
      EndLocked(queued);
    }
  }

  // Events read from the database after `enqueued_`: queued in order, then
  // another read if the page was full.
  void AcceptReplayLocked(absl::StatusOr<std::vector<v1::JobEvent>> events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    fetching_ = false;
    if (!events.ok()) return EndLocked(events.status());
    for (auto& e : *events) {
      if (e.sequence() != enqueued_ + 1) continue;
      enqueued_ = e.sequence();
      pending_.push_back(std::make_shared<const v1::JobEvent>(std::move(e)));
    }
    if (static_cast<int>(events->size()) == kReplayPage) need_replay_ = true;
    PumpLocked();
  }

  grpc::CallbackServerContext* ctx_;
  const v1::WatchJobRequest req_;
  // What is queued for the client and how far it reaches.
  // A vector, not a deque: an idle stream's empty vector allocates nothing.
  std::vector<EventPtr> pending_ ABSL_GUARDED_BY(mu_);
  int64_t enqueued_ ABSL_GUARDED_BY(mu_) = 0;
  bool need_replay_ ABSL_GUARDED_BY(mu_) = false;
  bool fetching_ ABSL_GUARDED_BY(mu_) = false;
  bool wrote_terminal_ ABSL_GUARDED_BY(mu_) = false;
  int64_t ends_from_ ABSL_GUARDED_BY(mu_) = 0;
};

// WatchJobs: every state change of the caller's jobs (admins: an owner's or
// everyone's), with the job as it is after the change. Never ends by itself;
// a client that falls too far behind is ended with RESOURCE_EXHAUSTED and
// resumes from ListJobs.
class WatchJobsReactor final : public WatchStream<v1::WatchJobsResponse, WatchJobsReactor> {
 public:
  WatchJobsReactor(std::shared_ptr<const JobServiceImpl::Shared> shared,
                   grpc::CallbackServerContext* ctx, v1::WatchJobsRequest req)
      : WatchStream(std::move(shared)), ctx_(ctx), req_(std::move(req)) {}

  void Begin() {
    self_ = shared_from_this();
    auto caller = CallerOf(ctx_);
    if (!caller.ok()) return End(caller.status());
    if (auto s = CheckToken("owner_id", req_.owner_id()); !s.ok()) return End(s);
    if (auto s = CheckToken("project_id", req_.project_id()); !s.ok()) return End(s);
    caller_ = *caller;
    auto owner = OwnerFilter(caller_, req_.owner_id());
    if (!owner.ok()) return End(owner.status());
    std::weak_ptr<WatchJobsReactor> weak = self_;
    absl::MutexLock lock(&mu_);
    subscription_ = shared_->hub->SubscribeOwner(JobEventHub::OwnerSubscriber{
        *owner,
        [weak](const JobNotice& n) {
          if (auto s = weak.lock()) s->OnNotice(n);
        },
        [weak] {
          // Changes may have been missed while the hub reconnected.
          if (auto s = weak.lock()) {
            s->End(
                absl::UnavailableError("job event stream interrupted; catch up with "
                                       "ListJobs and watch again"));
          }
        }});
    subscribed_ = true;
    // Headers now, so a client knows the watch is in place before changes come.
    StartSendInitialMetadata();
  }

  void OnSendInitialMetadataDone(bool) override {}

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) return EndLocked(absl::CancelledError("client went away"));
    PumpLocked();
  }

 private:
  void OnNotice(const JobNotice& n) {
    if (n.type != v1::JOB_EVENT_TYPE_STATE_CHANGED) return;
    absl::MutexLock lock(&mu_);
    if (notices_.size() + ready_.size() >= shared_->options.max_pending_per_watcher) {
      return EndLocked(absl::ResourceExhaustedError(
          "watcher fell behind; catch up with ListJobs and watch again"));
    }
    notices_.push_back(n);
    PumpLocked();
  }

  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    if (!writing_ && !ready_.empty()) {
      response_ = std::move(ready_.front());
      ready_.pop_front();
      writing_ = true;
      StartWrite(&response_);
    }
    if (fetching_ || notices_.empty()) return;
    JobNotice n = notices_.front();
    notices_.pop_front();
    fetching_ = true;
    auto self = self_;
    absl::Status queued = shared_->executor->Submit([self, n] {
      auto job = self->shared_->store->Get(n.job_id);
      auto events = self->shared_->board->EventsAfter(n.job_id, n.sequence - 1, 1);
      absl::MutexLock lock(&self->mu_);
      self->fetching_ = false;
      if (job.ok() && events.ok() && !events->empty() && self->Matches(*job)) {
        v1::WatchJobsResponse r;
        *r.mutable_job() = std::move(*job);
        *r.mutable_event() = std::move(events->front());
        self->ready_.push_back(std::move(r));
      }
      self->PumpLocked();
    });
    if (!queued.ok()) {
      fetching_ = false;
      EndLocked(queued);
    }
  }

  bool Matches(const v1::Job& job) const {
    if (!req_.project_id().empty() && job.project_id() != req_.project_id()) return false;
    if (req_.kinds_size() == 0) return true;
    for (const auto& k : req_.kinds()) {
      if (k == job.kind()) return true;
    }
    return false;
  }

  grpc::CallbackServerContext* ctx_;
  const v1::WatchJobsRequest req_;
  Principal caller_;
  // Notices waiting for their job to be read, and responses waiting to be written.
  std::deque<JobNotice> notices_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::WatchJobsResponse> ready_ ABSL_GUARDED_BY(mu_);
  bool fetching_ ABSL_GUARDED_BY(mu_) = false;
};

// What EnqueueDemoJob checks before anything is read or written.
absl::Status CheckDemoRequest(const JobServiceOptions& options,
                              const v1::EnqueueDemoJobRequest& req) {
  if (!options.demo_jobs) {
    return absl::FailedPreconditionError(
        "demo jobs are disabled on this server; start it with --demo_jobs");
  }
  if (auto s = ValidateDemoParams(req.kind(), req.params()); !s.ok()) return s;
  if (req.max_attempts() < 0 || req.max_attempts() > 100) {
    return InvalidField("max_attempts", "must be between 1 and 100 (0 = default 3)");
  }
  if (auto s = CheckToken("request_id", req.request_id()); !s.ok()) return s;
  return CheckToken("project_id", req.project_id());
}

}  // namespace

JobServiceImpl::JobServiceImpl(std::shared_ptr<JobBoard> board, std::shared_ptr<PgJobStore> store,
                               JobEventHub* hub, BoundedExecutorPtr executor,
                               JobServiceOptions options)
    : shared_(std::make_shared<const Shared>(
          Shared{std::move(board), std::move(store), hub, std::move(executor), options})) {}

grpc::ServerUnaryReactor* JobServiceImpl::GetJob(grpc::CallbackServerContext* ctx,
                                                 const v1::GetJobRequest* req,
                                                 v1::GetJobResponse* resp) {
  return ServeUnary(ctx, *shared_->executor, [this, req, resp](const Principal& caller) {
    return FillResponse(shared_->board->Get(caller, req->job_id()),
                        [resp](v1::Job j) { *resp->mutable_job() = std::move(j); });
  });
}

grpc::ServerUnaryReactor* JobServiceImpl::ListJobs(grpc::CallbackServerContext* ctx,
                                                   const v1::ListJobsRequest* req,
                                                   v1::ListJobsResponse* resp) {
  return ServeUnary(ctx, *shared_->executor, [this, req, resp](const Principal& caller) {
    return FillResponse(shared_->board->List(caller, *req),
                        [resp](v1::ListJobsResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* JobServiceImpl::ListJobEvents(grpc::CallbackServerContext* ctx,
                                                        const v1::ListJobEventsRequest* req,
                                                        v1::ListJobEventsResponse* resp) {
  return ServeUnary(ctx, *shared_->executor, [this, req, resp](const Principal& caller) {
    return FillResponse(shared_->board->ListEvents(caller, *req),
                        [resp](v1::ListJobEventsResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerWriteReactor<v1::WatchJobResponse>* JobServiceImpl::WatchJob(
    grpc::CallbackServerContext* ctx, const v1::WatchJobRequest* req) {
  auto reactor = std::make_shared<WatchJobReactor>(shared_, ctx, *req);
  reactor->Begin();
  return reactor.get();
}

grpc::ServerWriteReactor<v1::WatchJobsResponse>* JobServiceImpl::WatchJobs(
    grpc::CallbackServerContext* ctx, const v1::WatchJobsRequest* req) {
  auto reactor = std::make_shared<WatchJobsReactor>(shared_, ctx, *req);
  reactor->Begin();
  return reactor.get();
}

grpc::ServerUnaryReactor* JobServiceImpl::CancelJob(grpc::CallbackServerContext* ctx,
                                                    const v1::CancelJobRequest* req,
                                                    v1::CancelJobResponse* resp) {
  return ServeUnary(ctx, *shared_->executor, [this, req, resp](const Principal& caller) {
    return FillResponse(shared_->board->Cancel(caller, *req),
                        [resp](v1::Job j) { *resp->mutable_job() = std::move(j); });
  });
}

grpc::ServerUnaryReactor* JobServiceImpl::RetryJob(grpc::CallbackServerContext* ctx,
                                                   const v1::RetryJobRequest* req,
                                                   v1::RetryJobResponse* resp) {
  return ServeUnary(ctx, *shared_->executor, [this, req, resp](const Principal& caller) {
    return FillResponse(shared_->board->Retry(caller, *req),
                        [resp](v1::Job j) { *resp->mutable_job() = std::move(j); });
  });
}

grpc::ServerUnaryReactor* JobServiceImpl::ClearProjectJobs(grpc::CallbackServerContext* ctx,
                                                           const v1::ClearProjectJobsRequest* req,
                                                           v1::ClearProjectJobsResponse* resp) {
  return ServeUnary(ctx, *shared_->executor, [this, req, resp](const Principal& caller) {
    return FillResponse(shared_->board->ClearProject(caller, *req),
                        [resp](v1::ClearProjectJobsResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* JobServiceImpl::ListProjectHistory(
    grpc::CallbackServerContext* ctx, const v1::ListProjectHistoryRequest* req,
    v1::ListProjectHistoryResponse* resp) {
  return ServeUnaryForProjectOwner(
      ctx, shared_->executor, shared_->options.projects.get(), "project_id", req->project_id(),
      [shared = shared_, req, resp](const Principal&, const std::string& owner_id) -> absl::Status {
        auto jobs = shared->store->ListProjectJobs(owner_id, req->project_id(), kMaxHistoryJobs);
        if (!jobs.ok()) return jobs.status();
        std::vector<sessions::v1::SessionMessage> messages;
        std::string unavailable;
        if (const auto ids = OriginMessageIds(*jobs); !ids.empty()) {
          auto found = shared->options.messages == nullptr
                           ? absl::UnavailableError(
                                 "the sessions component is not part of this mesh: give "
                                 "--sessions_addr to show the messages")
                           : shared->options.messages->Lookup(owner_id, ids);
          if (found.ok()) {
            messages = *std::move(found);
          } else {
            unavailable = std::string(found.status().message());
          }
        }
        auto history = BuildProjectHistory(*jobs, messages, req->leading_to(), req->page_size());
        if (!history.ok() && static_cast<int>(jobs->size()) == kMaxHistoryJobs) {
          return absl::Status(history.status().code(),
                              absl::StrCat(history.status().message(), " (among its newest ",
                                           kMaxHistoryJobs, " jobs)"));
        }
        if (!history.ok()) return history.status();
        *resp = *std::move(history);
        // Older jobs than the newest kMaxHistoryJobs are not read.
        if (static_cast<int>(jobs->size()) == kMaxHistoryJobs) resp->set_truncated(true);
        resp->set_messages_unavailable(unavailable);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* JobServiceImpl::EnqueueDemoJob(grpc::CallbackServerContext* ctx,
                                                         const v1::EnqueueDemoJobRequest* req,
                                                         v1::EnqueueDemoJobResponse* resp) {
  // Bad input is refused before anyone is asked about the project.
  if (auto s = CheckDemoRequest(shared_->options, *req); !s.ok()) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  return ServeUnaryForProject(ctx, shared_->executor, shared_->options.projects.get(), "project_id",
                              req->project_id(), [this, req, resp](const Principal& caller) {
                                EnqueueRequest e;
                                e.kind = req->kind();
                                e.owner_id = caller.user_id;
                                e.project_id = req->project_id();
                                e.params = req->params();
                                e.request_id = req->request_id();
                                e.max_attempts = req->max_attempts() == 0 ? 3 : req->max_attempts();
                                e.origin = OriginOf(caller);
                                return FillResponse(
                                    shared_->store->Enqueue(e, absl::Now()),
                                    [resp](v1::Job j) { *resp->mutable_job() = std::move(j); });
                              });
}

}  // namespace orchestrator::jobs
