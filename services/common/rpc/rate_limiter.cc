#include "services/common/rpc/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace orchestrator {
namespace {
constexpr size_t kForgetAbove = 10000;
}

std::chrono::milliseconds RateLimiter::Acquire(const std::string& key) {
  if (!limit_.enabled()) return std::chrono::milliseconds(0);
  const auto now = clock_();
  absl::MutexLock lock(&mu_);
  if (buckets_.size() > kForgetAbove) ForgetFullLocked(now);
  auto [it, fresh] = buckets_.try_emplace(key, Bucket{limit_.burst, now});
  Bucket& b = it->second;
  if (!fresh) {
    const double elapsed = std::chrono::duration<double>(now - b.updated).count();
    b.tokens = std::min(limit_.burst, b.tokens + std::max(0.0, elapsed) * limit_.per_second);
    b.updated = now;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return std::chrono::milliseconds(0);
  }
  const double wait_s = (1 - b.tokens) / limit_.per_second;
  return std::chrono::milliseconds(static_cast<int64_t>(std::ceil(wait_s * 1000)));
}

void RateLimiter::ForgetFullLocked(std::chrono::steady_clock::time_point now) {
  absl::erase_if(buckets_, [&](const auto& entry) {
    const double elapsed = std::chrono::duration<double>(now - entry.second.updated).count();
    return entry.second.tokens + elapsed * limit_.per_second >= limit_.burst;
  });
  // Under a flood of distinct callers none has refilled: start over rather
  // than grow without bound (each forgotten caller gets a fresh burst).
  if (buckets_.size() > kForgetAbove) buckets_.clear();
}

}  // namespace orchestrator
