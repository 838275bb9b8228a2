#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "services/common/auth/mesh_identity.h"
#include "services/common/executor/bounded_executor.h"
#include "services/sessions/domain/job_end.h"

namespace orchestrator::sessions {

// Tells the session manager when its users' jobs end: keeps a
// JobService.WatchJobs stream open as the mesh (which sees every owner's
// jobs) and turns each change to SUCCEEDED, FAILED or CANCELLED into one
// `on_job_ended(JobEnd)` call, with outcome "succeeded", "failed" or "was
// cancelled", why the platform started the job when it did so on its own
// (its "started_because" param), and for a failure its error, marked
// needs_human when it asks its owner to step in (jobs::kNeedsHumanPrefix).
// While the jobs component cannot be reached it tries again with capped
// backoff, logging once per outage. WatchJobs is
// live only, so each time a watch is in place again the watcher catches up
// with ListJobs: the jobs that ended since the last watch ended (on the first
// watch, within `first_catch_up`) are told too. Telling a job twice is
// harmless: the session manager keeps one message per job end.
class JobEndWatcher final {
 public:
  using StubPtr = std::unique_ptr<jobs::v1::JobService::StubInterface>;
  using OnJobEnded = std::function<void(const JobEnd& end)>;

  struct Options {
    std::chrono::milliseconds min_backoff{100};
    std::chrono::milliseconds max_backoff{5000};
    // Every call has a deadline: a stream is opened again after this long.
    std::chrono::milliseconds stream_lifetime = std::chrono::hours(24);
    // On the first watch (a start of the sessions component): how far back
    // ended jobs are told.
    absl::Duration first_catch_up = absl::Minutes(15);
    // Catching up reads at most this many of the latest jobs per end state.
    int catch_up_jobs = 500;
  };

  // `make_stub` runs before every stream (an in-process channel exists only
  // once the server serves). `on_job_ended` may block (it writes to the
  // database): it runs on a thread of the watcher's own, one call at a time,
  // in the order the ends arrive.
  JobEndWatcher(std::function<StubPtr()> make_stub, MeshCredentialPtr mesh, OnJobEnded on_job_ended,
                Options options);
  JobEndWatcher(std::function<StubPtr()> make_stub, MeshCredentialPtr mesh, OnJobEnded on_job_ended)
      : JobEndWatcher(std::move(make_stub), std::move(mesh), std::move(on_job_ended), Options{}) {}
  ~JobEndWatcher();  // Stop()

  JobEndWatcher(const JobEndWatcher&) = delete;
  JobEndWatcher& operator=(const JobEndWatcher&) = delete;

  // Once the server serves. Idempotent.
  void Start();
  // Cancels the stream and returns once the watcher's threads have; an
  // on_job_ended call in progress finishes first. Idempotent.
  void Stop();

 private:
  class Stream;  // one WatchJobs call

  void Run();
  // On the dispatcher: one state change read from the stream.
  void Handle(const jobs::v1::WatchJobsResponse& change);
  // A stream over `stub` is in place.
  void Connected(std::shared_ptr<jobs::v1::JobService::StubInterface> stub);
  // On the dispatcher: the jobs that ended since `since`, with ListJobs.
  void CatchUp(jobs::v1::JobService::StubInterface& stub, absl::Time since);
  // One end (the job reached `ended`), told once.
  void Tell(const jobs::v1::Job& job, const std::string& key, jobs::v1::JobState ended);

  std::function<StubPtr()> make_stub_;
  const MeshCredentialPtr mesh_;
  const OnJobEnded on_job_ended_;
  const Options options_;
  absl::Mutex mu_;
  // Whether Stop was called, and the stream open now (to cancel it).
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Stream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;
  // Whether the jobs component is away (logged once, until a stream is back).
  bool outage_ ABSL_GUARDED_BY(mu_) = false;
  // Since when no watch has been in place: what the next one catches up.
  absl::Time unwatched_since_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // The ends told lately ({job, event sequence}), oldest first: each is
  // told once, whatever the stream repeats.
  absl::flat_hash_set<std::string> told_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> told_order_ ABSL_GUARDED_BY(mu_);
  absl::Notification stop_;
  std::thread thread_;
  // Runs on_job_ended off gRPC's threads; the next read waits for it.
  BoundedExecutor dispatcher_{1, 4};
};

}  // namespace orchestrator::sessions
