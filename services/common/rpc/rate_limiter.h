#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace orchestrator {

// How fast one caller may call: a token bucket refilled at `per_second`,
// holding at most `burst` calls. per_second <= 0 turns the limit off.
struct RateLimit {
  double per_second = 0;
  double burst = 0;
  bool enabled() const { return per_second > 0 && burst >= 1; }
};

// Token buckets keyed by caller (a token id, a user id). Thread-safe;
// memory stays bounded: buckets that have refilled are forgotten when the
// table grows.
class RateLimiter final {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  explicit RateLimiter(RateLimit limit, Clock clock = &std::chrono::steady_clock::now)
      : limit_(limit), clock_(std::move(clock)) {}

  // Zero when `key` may call now (and the call is counted); otherwise how
  // long until it may, and nothing is counted.
  std::chrono::milliseconds Acquire(const std::string& key);

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point updated;
  };
  void ForgetFullLocked(std::chrono::steady_clock::time_point now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const RateLimit limit_;
  Clock clock_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);  // caller → bucket
};

}  // namespace orchestrator
