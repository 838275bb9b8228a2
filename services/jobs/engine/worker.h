#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/executor/bounded_executor.h"
#include "services/jobs/domain/job_queue.h"
#include "services/jobs/store/job_event_hub.h"

namespace orchestrator::jobs {

struct WorkerOptions {
  std::string worker_id;  // unique per process; generated when empty
  int concurrency = 8;    // handlers running at once
  // Jobs reserved ahead of free handlers (the local queue) at most; they
  // are charged an attempt only when a handler starts them. A reservation
  // still waiting for a handler after one lease is given back (see
  // Worker::HeartbeatLoop).
  int claim_batch = 32;
  absl::Duration lease = absl::Seconds(30);
  absl::Duration heartbeat = absl::Seconds(10);
  // Claims also happen on this period when no notification arrives.
  absl::Duration poll = absl::Seconds(2);
  // How often this worker looks for expired leases (any worker may reap).
  absl::Duration reap = absl::Seconds(2);
  ClaimLimits limits;
  BackoffPolicy backoff;
};

using Clock = std::function<absl::Time()>;
// A number in [0, 1] for backoff jitter.
using Jitter = std::function<double()>;

class Worker;

// What a handler sees of its job: the job, a way to report progress and log
// lines (as job events), and whether it should stop (cancel requested, lease
// lost or the worker shutting down).
class JobContext final {
 public:
  const v1::Job& job() const { return job_; }
  // True once the handler should stop: cancel requested, lease lost, or the
  // worker shutting down.
  bool cancelled() const { return stop_ != StopReason::kNone; }

  absl::Status Progress(int percent, const std::string& message);
  absl::Status Log(const std::string& text);

  // Waits up to `d`; returns false early when the job should stop.
  bool Sleep(absl::Duration d);

 private:
  friend class Worker;
  enum class StopReason { kNone, kCancelRequested, kLeaseLost, kShutdown };
  JobContext(Worker* worker, v1::Job job) : worker_(worker), job_(std::move(job)) {}
  void Stop(StopReason reason);

  Worker* worker_;
  v1::Job job_;
  std::atomic<StopReason> stop_{StopReason::kNone};
  absl::Mutex mu_;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;  // wakes Sleep
  // Set (under the worker's mutex) once its success waits for the completer.
  bool completing_ = false;
};

// A handler returns the job's result, or an error: permanent codes
// (INVALID_ARGUMENT, FAILED_PRECONDITION, ...) fail the job at once,
// transient ones (UNAVAILABLE, ABORTED, DEADLINE_EXCEEDED, ...) retry with
// backoff until max_attempts.
using JobHandler = std::function<absl::StatusOr<google::protobuf::Struct>(JobContext&)>;

// Claims jobs of the registered kinds and runs them: leases renewed by a
// heartbeat, cancellation delivered through the context, expired leases of
// any worker re-queued, and on Stop() running jobs finish or are released.
class Worker final {
 public:
  Worker(std::shared_ptr<JobQueue> store, JobEventHub* hub, WorkerOptions options,
         Clock clock = &absl::Now, Jitter jitter = nullptr);
  ~Worker();

  void Register(const std::string& kind, JobHandler handler);
  void Start();
  // Stops claiming, gives back at once the jobs it reserved but did not
  // start, asks running handlers to stop, waits up to `drain` for them, then
  // gives back (releases) what is still running.
  void Stop(absl::Duration drain = absl::Seconds(10));

  const std::string& id() const { return options_.worker_id; }
  // Runs one claim round now (tests drive workers without timers this way).
  void Poke();

 private:
  friend class JobContext;
  void DispatchLoop();
  // Starts as many reserved jobs as there are free handlers.
  void StartReserved();
  void HeartbeatLoop();
  // Runs one started job on a handler thread, then frees the handler.
  void Run(std::shared_ptr<JobContext> ctx);
  void Attempt(const std::shared_ptr<JobContext>& ctx);
  AttemptOutcome OutcomeOf(const v1::Job& job, const absl::StatusOr<google::protobuf::Struct>& r,
                           bool cancel_requested);
  void FinishWithRetries(const std::shared_ptr<JobContext>& ctx, const AttemptOutcome& outcome);
  // Runs `write` until it succeeds, `lost()` says the lease is gone, or the
  // lease would have expired; returns the last status.
  absl::Status WhileLeased(const std::function<absl::Status()>& write,
                           const std::function<bool()>& lost);
  // Successes are finished in batches: whatever accumulated while the last
  // batch was written goes out in one statement.
  void CompleteLoop();
  void Done(const std::shared_ptr<JobContext>& ctx);

  std::shared_ptr<JobQueue> store_;
  JobEventHub* hub_;
  WorkerOptions options_;
  Clock clock_;
  Jitter jitter_;
  std::unique_ptr<BoundedExecutor> handlers_;
  std::vector<std::string> kinds_;
  absl::flat_hash_map<std::string, JobHandler> registry_;
  uint64_t ready_handle_ = 0;
  uint64_t cancel_handle_ = 0;

  absl::Mutex mu_;
  // Jobs this worker runs, the jobs it reserved (in queue order), how many
  // handlers are busy, the dispatcher's wake-up flag and the stop flag.
  absl::flat_hash_map<std::string, std::shared_ptr<JobContext>> running_ ABSL_GUARDED_BY(mu_);
  // A job reserved by a claim, and when (this worker's clock).
  struct Reservation {
    v1::Job job;
    absl::Time since;
  };
  std::deque<Reservation> reserved_ ABSL_GUARDED_BY(mu_);
  // After giving back reservations that waited too long, claims only fill
  // free handlers (no jobs ahead) until then: see HeartbeatLoop.
  absl::Time prefetch_after_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int busy_ ABSL_GUARDED_BY(mu_) = 0;
  bool poke_ ABSL_GUARDED_BY(mu_) = true;  // the first round claims at once
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Successful attempts waiting for the completer.
  std::vector<std::pair<std::shared_ptr<JobContext>, google::protobuf::Struct>> succeeded_
      ABSL_GUARDED_BY(mu_);
  bool completer_stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool heartbeat_stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread dispatcher_;
  std::thread heartbeat_;
  std::thread completer_;
};

}  // namespace orchestrator::jobs
