#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/jobs/store/job_event_hub.h"

namespace orchestrator::testing {

// Collects a job's events as the hub delivers them, so a test can wait for
// "the job reached X" on notifications instead of sleeping.
class JobEventLog final {
 public:
  JobEventLog(jobs::JobEventHub& hub, const std::string& job_id) : hub_(hub) {
    handle_ = hub_.SubscribeJob(job_id, 0,
                                jobs::JobEventHub::JobSubscriber{
                                    [this](const std::shared_ptr<const jobs::v1::JobEvent>& e) {
                                      absl::MutexLock lock(&mu_);
                                      events_.push_back(*e);
                                    },
                                    [] {}});
  }
  ~JobEventLog() { hub_.Unsubscribe(handle_); }

  // Waits (up to `timeout`) for an event matching `pred`; returns it, or
  // an event with sequence 0 on timeout.
  jobs::v1::JobEvent WaitFor(const std::function<bool(const jobs::v1::JobEvent&)>& pred,
                             absl::Duration timeout = absl::Seconds(20)) {
    absl::MutexLock lock(&mu_);
    const jobs::v1::JobEvent* found = nullptr;
    auto seen = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const auto& e : events_) {
        if (pred(e)) {
          found = &e;
          return true;
        }
      }
      return false;
    };
    mu_.AwaitWithTimeout(absl::Condition(&seen), timeout);
    return found ? *found : jobs::v1::JobEvent();
  }

  // The nth change into `state` (retries reach QUEUED and RUNNING again).
  jobs::v1::JobEvent WaitForState(jobs::v1::JobState state, int nth = 1,
                                  absl::Duration timeout = absl::Seconds(20)) {
    absl::MutexLock lock(&mu_);
    const jobs::v1::JobEvent* found = nullptr;
    auto seen = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      int count = 0;
      for (const auto& e : events_) {
        if (e.type() == jobs::v1::JOB_EVENT_TYPE_STATE_CHANGED &&
            e.state_changed().to_state() == state && ++count == nth) {
          found = &e;
          return true;
        }
      }
      return false;
    };
    mu_.AwaitWithTimeout(absl::Condition(&seen), timeout);
    return found ? *found : jobs::v1::JobEvent();
  }

 private:
  jobs::JobEventHub& hub_;
  uint64_t handle_;
  absl::Mutex mu_;
  std::vector<jobs::v1::JobEvent> events_ ABSL_GUARDED_BY(mu_);
};

}  // namespace orchestrator::testing
