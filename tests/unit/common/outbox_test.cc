#include "services/common/executor/outbox.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace orchestrator {
namespace {

using ::testing::ElementsAre;

// What effects did, in the order they did it.
class Log {
 public:
  void Add(std::string what) {
    absl::MutexLock lock(&mu_);
    entries_.push_back(std::move(what));
  }
  std::vector<std::string> entries() {
    absl::MutexLock lock(&mu_);
    return entries_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> entries_ ABSL_GUARDED_BY(mu_);
};

TEST(Outbox, ACallReturnsOnceWhatItPostedIsApplied) {
  Outbox outbox;
  Log log;
  outbox.Post([&] { log.Add("saved"); });
  EXPECT_THAT(log.entries(), ::testing::IsEmpty());
  outbox.Settle();
  EXPECT_THAT(log.entries(), ElementsAre("saved"));
  EXPECT_TRUE(outbox.Idle());
}

TEST(Outbox, EffectsApplyInTheOrderOfTheChangesWhoeverSettles) {
  Outbox outbox;
  Log log;
  absl::Mutex state_mu;
  int state = 0;  // guarded by state_mu: the changes the effects follow
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        {
          absl::MutexLock lock(&state_mu);
          outbox.Post([&log, n = ++state] { log.Add(absl::StrCat(n)); });
        }
        outbox.Settle();
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto entries = log.entries();
  ASSERT_EQ(entries.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(entries[i], absl::StrCat(i + 1));
}

TEST(Outbox, AnEffectThatPostsAndSettlesGoesOnAfterItself) {
  Outbox outbox;
  Log log;
  outbox.Post([&] {
    outbox.Post([&] { log.Add("second"); });
    outbox.Settle();  // would wait for itself: returns at once
    log.Add("first");
  });
  outbox.Settle();
  EXPECT_THAT(log.entries(), ElementsAre("first", "second"));
}

TEST(Outbox, WhatIsPostedWhileHeldWaitsForRelease) {
  Outbox outbox;
  Log log;
  outbox.Hold();
  outbox.Post([&] { log.Add("after the row"); });
  absl::Notification settled;
  std::thread other([&] {
    outbox.Settle();
    settled.Notify();
  });
  EXPECT_FALSE(settled.WaitForNotificationWithTimeout(absl::Milliseconds(50)));
  log.Add("the row");
  outbox.Release();
  settled.WaitForNotification();
  other.join();
  EXPECT_THAT(log.entries(), ElementsAre("the row", "after the row"));
}

}  // namespace
}  // namespace orchestrator
