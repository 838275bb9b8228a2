#include "services/jobs/engine/worker.h"

#include <unistd.h>

#include <random>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "services/common/crypto/secret_box.h"
#include "services/common/logging/format.h"
#include "spdlog/spdlog.h"

namespace orchestrator::jobs {

absl::Status JobContext::Progress(int percent, const std::string& message) {
  v1::JobEvent e;
  e.set_type(v1::JOB_EVENT_TYPE_PROGRESS);
  e.mutable_progress()->set_percent(percent);
  e.mutable_progress()->set_message(message);
  return worker_->store_->AppendEvent(worker_->id(), job_.id(), e, worker_->clock_());
}

absl::Status JobContext::Log(const std::string& text) {
  v1::JobEvent e;
  e.set_type(v1::JOB_EVENT_TYPE_LOG_LINE);
  e.mutable_log_line()->set_text(text);
  return worker_->store_->AppendEvent(worker_->id(), job_.id(), e, worker_->clock_());
}

bool JobContext::Sleep(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&wake_), d);
  return !cancelled();
}

void JobContext::Stop(StopReason reason) {
  // The first reason wins: a lost lease stays lost even if a cancel follows.
  StopReason none = StopReason::kNone;
  stop_.compare_exchange_strong(none, reason);
  absl::MutexLock lock(&mu_);
  wake_ = true;
}

Worker::Worker(std::shared_ptr<JobQueue> store, JobEventHub* hub, WorkerOptions options,
               Clock clock, Jitter jitter)
    : store_(std::move(store)),
      hub_(hub),
      options_(std::move(options)),
      clock_(std::move(clock)),
      jitter_(std::move(jitter)) {
  if (options_.worker_id.empty()) {
    char host[64] = {};
    ::gethostname(host, sizeof host - 1);
    options_.worker_id = absl::StrCat(host, ":", ::getpid(), ":", RandomUrlSafe(6));
  }
  if (!jitter_) {
    jitter_ = [] {
      thread_local std::mt19937_64 rng{std::random_device{}()};
      return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    };
  }
}

Worker::~Worker() { Stop(absl::ZeroDuration()); }

void Worker::Register(const std::string& kind, JobHandler handler) {
  kinds_.push_back(kind);
  registry_[kind] = std::move(handler);
}

void Worker::Start() {
  // Jobs are started only for free handlers, so nothing waits in the
  // executor's queue: the local queue is reserved_.
  handlers_ = std::make_unique<BoundedExecutor>(options_.concurrency, options_.concurrency);
  if (hub_ != nullptr) {
    ready_handle_ = hub_->SubscribeReady([this](const std::string& kind) {
      if (!kind.empty() && !registry_.contains(kind)) return;
      Poke();
    });
    // A cancel request reaches the handler at once, not only at the heartbeat.
    cancel_handle_ = hub_->SubscribeOwner(JobEventHub::OwnerSubscriber{
        "",
        [this](const JobNotice& n) {
          if (n.type != v1::JOB_EVENT_TYPE_CANCEL_REQUESTED) return;
          absl::MutexLock lock(&mu_);
          if (auto it = running_.find(n.job_id); it != running_.end()) {
            it->second->Stop(JobContext::StopReason::kCancelRequested);
          }
        },
        nullptr});
  }
  dispatcher_ = std::thread([this] { DispatchLoop(); });
  heartbeat_ = std::thread([this] { HeartbeatLoop(); });
  completer_ = std::thread([this] { CompleteLoop(); });
}

void Worker::Poke() {
  absl::MutexLock lock(&mu_);
  poke_ = true;
}

void Worker::Stop(absl::Duration drain) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (hub_ != nullptr) {
    hub_->Unsubscribe(ready_handle_);
    hub_->Unsubscribe(cancel_handle_);
  }
  if (dispatcher_.joinable()) dispatcher_.join();
  // Reserved jobs never started: back to the queue now, charged nothing, so
  // another worker runs them without waiting for their lease.
  std::vector<std::string> reserved;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& r : reserved_) reserved.push_back(r.job.id());
    reserved_.clear();
  }
  if (auto s = store_->Unreserve(options_.worker_id, reserved); !s.ok()) {
    spdlog::warn("jobs: {} reserved jobs not given back (their lease will lapse): {}",
                 reserved.size(), s.ToString());
  }
  // Let running handlers finish within the drain deadline.
  {
    absl::MutexLock lock(&mu_);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_.empty(); };
    if (!mu_.AwaitWithTimeout(absl::Condition(&idle), drain)) {
      for (auto& [id, ctx] : running_) ctx->Stop(JobContext::StopReason::kShutdown);
      mu_.AwaitWithTimeout(absl::Condition(&idle), absl::Seconds(1));
    }
  }
  // Whatever still runs is given back so another worker can take it now;
  // successes waiting for the completer are recorded instead.
  std::vector<std::shared_ptr<JobContext>> leftover;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, ctx] : running_) {
      ctx->Stop(JobContext::StopReason::kShutdown);
      if (!ctx->completing_) leftover.push_back(ctx);
    }
    heartbeat_stopping_ = true;
  }
  for (const auto& ctx : leftover) (void)store_->Release(options_.worker_id, ctx->job(), clock_());
  if (heartbeat_.joinable()) heartbeat_.join();
  {
    absl::MutexLock lock(&mu_);
    completer_stopping_ = true;
  }
  if (completer_.joinable()) completer_.join();
  if (handlers_) handlers_->Shutdown();
  handlers_.reset();
}

void Worker::DispatchLoop() {
  absl::Time next_reap = absl::InfinitePast();
  for (;;) {
    int room = 0;
    absl::Time now;
    {
      absl::MutexLock lock(&mu_);
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return poke_ || stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&woken), options_.poll);
      if (stopping_) return;
      poke_ = false;
      now = clock_();
      const int held = busy_ + static_cast<int>(reserved_.size());
      if (now < prefetch_after_) {
        // We just gave back jobs our handlers could not start: claim only
        // for free handlers, so those jobs go to idle workers, not back here.
        room = options_.concurrency - held;
      } else {
        // Claims reserve up to claim_batch jobs beyond what the handlers run,
        // and wait while that local queue is still more than half full, so
        // claims go out in batches rather than one job per finished job.
        room = options_.concurrency + options_.claim_batch - held;
        if (held > options_.concurrency && room < options_.claim_batch / 2) room = 0;
      }
    }
    if (now >= next_reap) {
      auto reaped = store_->ReapExpiredLeases(now);
      if (reaped.ok() && *reaped > 0)
        spdlog::info("jobs: re-queued {} jobs with expired leases", *reaped);
      next_reap = now + options_.reap;
    }
    if (room > 0) {
      const int want = std::min(room, options_.claim_batch);
      auto claimed =
          store_->Claim(options_.worker_id, kinds_, options_.limits, want, options_.lease, now);
      if (!claimed.ok()) {
        spdlog::warn("jobs: claim failed: {}", claimed.status().ToString());
      } else {
        absl::MutexLock lock(&mu_);
        for (auto& job : *claimed) reserved_.push_back({std::move(job), now});
        if (static_cast<int>(claimed->size()) == want) poke_ = true;  // more may wait
      }
    }
    StartReserved();
  }
}

void Worker::StartReserved() {
  std::vector<Reservation> taken;
  std::vector<std::string> ids;
  {
    absl::MutexLock lock(&mu_);
    while (busy_ < options_.concurrency && !reserved_.empty()) {
      ids.push_back(reserved_.front().job.id());
      taken.push_back(std::move(reserved_.front()));
      reserved_.pop_front();
      ++busy_;  // the handler is taken until its job ends
    }
  }
  if (ids.empty()) return;
  auto started = store_->Start(options_.worker_id, ids, options_.lease, clock_());
  if (!started.ok()) {
    spdlog::warn("jobs: start failed: {}", started.status().ToString());
    absl::MutexLock lock(&mu_);
    // Still reserved by us: they keep their place (and age) for the next round.
    for (auto it = taken.rbegin(); it != taken.rend(); ++it) reserved_.push_front(std::move(*it));
    busy_ -= static_cast<int>(ids.size());
    return;
  }
  {
    // The others were cancelled, or lapsed and are someone else's now.
    absl::MutexLock lock(&mu_);
    busy_ -= static_cast<int>(ids.size() - started->size());
  }
  for (auto& job : *started) {
    auto ctx = std::shared_ptr<JobContext>(new JobContext(this, std::move(job)));
    {
      absl::MutexLock lock(&mu_);
      auto& slot = running_[ctx->job().id()];
      // Our own earlier attempt, reaped after a long database outage and
      // started again: that attempt must stop, this one takes its place.
      if (slot) slot->Stop(JobContext::StopReason::kLeaseLost);
      slot = ctx;
    }
    if (!handlers_->Submit([this, ctx] { Run(ctx); }).ok()) {
      Done(ctx);
      (void)store_->Release(options_.worker_id, ctx->job(), clock_());
      absl::MutexLock lock(&mu_);
      --busy_;
    }
  }
}

void Worker::HeartbeatLoop() {
  for (;;) {
    std::vector<std::string> ids;  // running and reserved: leases to renew
    absl::flat_hash_set<std::string> asked_reserved;
    std::vector<std::string> stale;  // reservations to give back
    absl::Time now;
    {
      absl::MutexLock lock(&mu_);
      auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return heartbeat_stopping_ || (stopping_ && running_.empty());
      };
      mu_.AwaitWithTimeout(absl::Condition(&stop), options_.heartbeat);
      if (stop()) return;
      now = clock_();
      // A reservation is renewed for about one lease at most. One that has
      // waited longer while every handler is busy is given back (no attempt
      // charged), so idle workers run it instead of it waiting here behind
      // slow jobs, and a reserved job of a limited kind or with a
      // concurrency key stops holding its owner's limit or its key. For one
      // lease after that, claims only fill free handlers, so the jobs given
      // back are not claimed straight back by this busy worker.
      if (busy_ >= options_.concurrency) {
        std::erase_if(reserved_, [&](const Reservation& r) {
          if (r.since + options_.lease > now) return false;
          stale.push_back(r.job.id());
          return true;
        });
        if (!stale.empty()) prefetch_after_ = now + options_.lease;
      }
      for (auto& [id, ctx] : running_) ids.push_back(id);
      for (const auto& r : reserved_) {
        ids.push_back(r.job.id());
        asked_reserved.insert(r.job.id());
      }
    }
    if (!stale.empty()) {
      if (auto s = store_->Unreserve(options_.worker_id, stale); !s.ok()) {
        spdlog::warn("jobs: {} waiting reservations not given back (their lease will lapse): {}",
                     stale.size(), s.ToString());
      }
    }
    auto held = store_->Heartbeat(options_.worker_id, ids, options_.lease, now);
    if (!held.ok()) {
      spdlog::warn("jobs: heartbeat failed: {}", held.status().ToString());
      continue;
    }
    absl::MutexLock lock(&mu_);
    // A lapsed reservation may already be another worker's: never start it.
    // Only the ones this round asked about: jobs reserved while it talked to
    // the database were not in `ids`, so they are missing from `held` too.
    std::erase_if(reserved_, [&](const Reservation& r) {
      return asked_reserved.contains(r.job.id()) && !held->contains(r.job.id());
    });
    for (const auto& id : ids) {
      auto it = running_.find(id);
      if (it == running_.end()) continue;
      auto h = held->find(id);
      if (h == held->end()) {
        it->second->Stop(JobContext::StopReason::kLeaseLost);  // reaped: another may run it
      } else if (h->second) {
        it->second->Stop(JobContext::StopReason::kCancelRequested);
      }
    }
  }
}

AttemptOutcome Worker::OutcomeOf(const v1::Job& job,
                                 const absl::StatusOr<google::protobuf::Struct>& r,
                                 bool cancel_requested) {
  AttemptOutcome out;
  if (r.ok()) {
    out.state = v1::JOB_STATE_SUCCEEDED;
    out.result = *r;
    return out;
  }
  out.error = r.status();
  if (cancel_requested) {
    out.state = v1::JOB_STATE_CANCELLED;
    out.error = absl::CancelledError("cancelled on request");
  } else if (IsTransient(r.status().code()) && job.attempt() < job.max_attempts()) {
    out.state = v1::JOB_STATE_QUEUED;
    out.retry_at = clock_() + options_.backoff.Delay(job.attempt(), jitter_());
  } else {
    out.state = v1::JOB_STATE_FAILED;
  }
  return out;
}

absl::Status Worker::WhileLeased(const std::function<absl::Status()>& write,
                                 const std::function<bool()>& lost) {
  // The database may be restarting: keep trying while the lease lasts.
  const absl::Time give_up = clock_() + options_.lease;
  absl::Duration wait = absl::Milliseconds(50);
  for (;;) {
    absl::Status status = write();
    if (status.ok() || lost() || clock_() >= give_up) return status;
    absl::SleepFor(wait);
    wait = std::min(wait * 2, absl::Seconds(1));
  }
}

void Worker::FinishWithRetries(const std::shared_ptr<JobContext>& ctx,
                               const AttemptOutcome& outcome) {
  bool recorded = true;
  absl::Status status = WhileLeased(
      [&] {
        auto finished = store_->Finish(options_.worker_id, ctx->job(), outcome, clock_());
        if (finished.ok()) recorded = *finished;
        return finished.status();
      },
      [&] { return ctx->stop_ == JobContext::StopReason::kLeaseLost; });
  if (!status.ok()) {
    spdlog::warn("jobs: job={} could not be finished: {}", ctx->job().id(), status.ToString());
  } else if (!recorded) {
    spdlog::warn("jobs: job={} attempt={} finished after its lease was lost; result dropped",
                 ctx->job().id(), ctx->job().attempt());
  }
}

void Worker::Run(std::shared_ptr<JobContext> ctx) {
  Attempt(ctx);
  absl::MutexLock lock(&mu_);
  --busy_;
  poke_ = true;  // a handler is free
}

void Worker::Attempt(const std::shared_ptr<JobContext>& ctx) {
  const v1::Job& job = ctx->job();
  // Stopped while it waited in the local queue: Stop already gave it back
  // (shutdown) or another worker owns it (lease lost).
  if (ctx->cancelled() && ctx->stop_ != JobContext::StopReason::kCancelRequested) return Done(ctx);
  absl::StatusOr<google::protobuf::Struct> result = absl::InternalError("no handler");
  if (auto it = registry_.find(job.kind()); it != registry_.end()) {
    result = it->second(*ctx);
  }
  const auto stop = ctx->stop_.load();
  if (stop == JobContext::StopReason::kLeaseLost) return Done(ctx);  // another's now
  if (result.ok()) {
    absl::MutexLock lock(&mu_);
    ctx->completing_ = true;  // Stop must not release it
    succeeded_.emplace_back(ctx, std::move(*result));
    return;  // the completer records it, then it is done
  }
  if (stop == JobContext::StopReason::kShutdown) {
    // Gave up because the worker stops: back to the queue for another worker.
    (void)store_->Release(options_.worker_id, job, clock_());
  } else {
    FinishWithRetries(ctx,
                      OutcomeOf(job, result, stop == JobContext::StopReason::kCancelRequested));
  }
  Done(ctx);
}

void Worker::Done(const std::shared_ptr<JobContext>& ctx) {
  absl::MutexLock lock(&mu_);
  // Only this attempt's entry: a later attempt of the same job may hold the slot.
  if (auto it = running_.find(ctx->job().id()); it != running_.end() && it->second == ctx) {
    running_.erase(it);
  }
  poke_ = true;  // room for another job
}

void Worker::CompleteLoop() {
  const size_t kMaxBatch = std::max(500, options_.claim_batch);
  for (;;) {
    std::vector<std::pair<std::shared_ptr<JobContext>, google::protobuf::Struct>> batch;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !succeeded_.empty() || completer_stopping_;
      };
      mu_.Await(absl::Condition(&ready));
      if (succeeded_.empty()) return;  // stopping and drained
      const size_t n = std::min(kMaxBatch, succeeded_.size());
      batch.assign(std::make_move_iterator(succeeded_.begin()),
                   std::make_move_iterator(succeeded_.begin() + n));
      succeeded_.erase(succeeded_.begin(), succeeded_.begin() + n);
    }
    std::vector<SuccessfulAttempt> attempts;
    for (auto& [ctx, result] : batch) {
      attempts.push_back({ctx->job().id(), ctx->job().attempt(), std::move(result)});
    }
    size_t recorded = attempts.size();
    absl::Status status = WhileLeased(
        [&] {
          auto finished = store_->FinishSucceeded(options_.worker_id, attempts, clock_());
          if (finished.ok()) recorded = finished->size();
          return finished.status();
        },
        [] { return false; });
    if (!status.ok()) {
      spdlog::warn("jobs: {} finished jobs could not be recorded: {}", attempts.size(),
                   status.ToString());
    } else if (recorded != attempts.size()) {
      spdlog::warn("jobs: {} jobs finished after their lease was lost; results dropped",
                   attempts.size() - recorded);
    }
    absl::MutexLock lock(&mu_);  // one lock and one wake-up for the whole batch
    for (auto& [ctx, result] : batch) {
      auto it = running_.find(ctx->job().id());
      if (it != running_.end() && it->second == ctx) running_.erase(it);
    }
    poke_ = true;
  }
}

}  // namespace orchestrator::jobs
