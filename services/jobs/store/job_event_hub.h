#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "orchestrator/jobs/v1/jobs.pb.h"
#include "services/common/db/pool.h"
#include "services/common/executor/bounded_executor.h"

namespace orchestrator::jobs {

// A job changed: its latest event's sequence, owner, state and event type.
struct JobNotice {
  std::string job_id;
  int64_t sequence = 0;
  std::string owner_id;
  v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
  v1::JobEventType type = v1::JOB_EVENT_TYPE_UNSPECIFIED;
};

// The process's one LISTEN connection. Notifications (sent by the store in
// the transaction that made the change) fan out in memory: events of a job
// are read from the database once per notification and handed to every
// subscriber of that job, so watchers cost no connection and no query each.
// Callbacks run on the hub's threads and must not block: a job with many
// subscribers is handed to them in shares, one per fan-out thread, so a
// burst to thousands of watchers uses every core. After a lost connection
// every subscriber's `resync` runs: it may have missed events.
class JobEventHub final {
 public:
  struct JobSubscriber {
    std::function<void(const std::shared_ptr<const v1::JobEvent>&)> on_event;
    std::function<void()> resync;
  };
  struct OwnerSubscriber {
    std::string owner_id;  // "" = every owner
    std::function<void(const JobNotice&)> on_notice;
    std::function<void()> resync;
  };

  // `conninfo` for the listening connection; `reader` for the event reads;
  // `fanout_threads` (≥ 1, the hub's own thread included) share big fan-outs.
  JobEventHub(std::string conninfo, db::PoolPtr reader, int fanout_threads = 2);
  ~JobEventHub();

  void Start();
  void Stop();

  // Subscribes to a job's events from `after_sequence` on (the hub reads from
  // there when it first hears of the job). Returns a handle for Unsubscribe.
  uint64_t SubscribeJob(const std::string& job_id, int64_t after_sequence, JobSubscriber s);
  uint64_t SubscribeOwner(OwnerSubscriber s);
  // Called with a kind whenever jobs of it may be ready to claim.
  uint64_t SubscribeReady(std::function<void(const std::string& kind)> on_ready);
  void Unsubscribe(uint64_t handle);

  // Blocks until the hub listens (or `timeout`); notifications sent before
  // that reach subscribers only through their resync.
  bool WaitUntilListening(absl::Duration timeout);

 private:
  struct JobTopic {
    int64_t read_up_to = 0;  // events up to here were already fanned out
    absl::flat_hash_map<uint64_t, JobSubscriber> subscribers;
  };

  void Run();
  void Dispatch(const std::string& channel, const std::string& payload);
  void FanOutJob(const JobNotice& notice);
  // Calls every subscriber with `events`, in shares across the fan-out threads.
  void Deliver(const std::vector<JobSubscriber>& subscribers,
               const std::vector<std::shared_ptr<const v1::JobEvent>>& events);
  void ResyncAll();

  const std::string conninfo_;
  db::PoolPtr reader_;
  const size_t fanout_threads_;
  std::unique_ptr<BoundedExecutor> fanout_;  // the extra fan-out threads, if any
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  absl::Notification first_listen_;
  int wake_fd_[2] = {-1, -1};  // wakes the poll() loop on Stop

  mutable absl::Mutex mu_;
  // Subscriptions by handle, and job topics by job id.
  uint64_t next_handle_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<std::string, JobTopic> jobs_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::string> job_of_handle_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, OwnerSubscriber> owners_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::function<void(const std::string&)>> ready_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace orchestrator::jobs
