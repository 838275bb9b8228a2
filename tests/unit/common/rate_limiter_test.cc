#include "services/common/rpc/rate_limiter.h"

#include "gtest/gtest.h"

namespace orchestrator {
namespace {

using std::chrono::milliseconds;

struct FakeClock {
  std::chrono::steady_clock::time_point now{};
};

TEST(RateLimiter, AllowsABurstThenTellsWhenToRetry) {
  FakeClock clock;
  RateLimiter limiter({.per_second = 10, .burst = 3}, [&] { return clock.now; });
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.Acquire("tok_a"), milliseconds(0)) << i;
  EXPECT_EQ(limiter.Acquire("tok_a"), milliseconds(100));  // one call per 100 ms refills
  EXPECT_EQ(limiter.Acquire("tok_a"), milliseconds(100));  // a refused call costs nothing
  clock.now += milliseconds(100);
  EXPECT_EQ(limiter.Acquire("tok_a"), milliseconds(0));
  EXPECT_GT(limiter.Acquire("tok_a"), milliseconds(0));
}

TEST(RateLimiter, OneCallerDoesNotStarveAnother) {
  FakeClock clock;
  RateLimiter limiter({.per_second = 1, .burst = 2}, [&] { return clock.now; });
  while (limiter.Acquire("runaway") == milliseconds(0)) {
  }
  EXPECT_EQ(limiter.Acquire("someone-else"), milliseconds(0));
}

TEST(RateLimiter, NeverHoldsMoreThanTheBurst) {
  FakeClock clock;
  RateLimiter limiter({.per_second = 100, .burst = 2}, [&] { return clock.now; });
  clock.now += std::chrono::hours(1);
  EXPECT_EQ(limiter.Acquire("k"), milliseconds(0));
  EXPECT_EQ(limiter.Acquire("k"), milliseconds(0));
  EXPECT_GT(limiter.Acquire("k"), milliseconds(0));
}

TEST(RateLimiter, OffWhenTheRateIsZero) {
  RateLimiter limiter({});
  for (int i = 0; i < 10000; ++i) ASSERT_EQ(limiter.Acquire("k"), milliseconds(0));
}

TEST(RateLimiter, ManyDistinctCallersKeepMemoryBounded) {
  FakeClock clock;
  RateLimiter limiter({.per_second = 1, .burst = 1}, [&] { return clock.now; });
  for (int i = 0; i < 50000; ++i) limiter.Acquire("caller-" + std::to_string(i));
  // Still limiting the most recent caller.
  EXPECT_GT(limiter.Acquire("caller-49999"), milliseconds(0));
}

}  // namespace
}  // namespace orchestrator
