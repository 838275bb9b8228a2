#include "services/common/executor/bounded_executor.h"

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace orchestrator {
namespace {

TEST(BoundedExecutor, RunsWhatIsSubmitted) {
  absl::Notification done;
  BoundedExecutor ex(2, 8);
  ASSERT_TRUE(ex.Submit([&] { done.Notify(); }).ok());
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

TEST(BoundedExecutor, AFullQueueIsRefusedNotGrown) {
  absl::Notification release, started;
  BoundedExecutor ex(1, 2);
  ASSERT_TRUE(ex.Submit([&] {
                  started.Notify();
                  release.WaitForNotification();
                }).ok());
  started.WaitForNotification();  // the only thread is busy
  EXPECT_TRUE(ex.Submit([] {}).ok());
  EXPECT_TRUE(ex.Submit([] {}).ok());
  absl::Status refused = ex.Submit([] {});
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  release.Notify();
}

TEST(BoundedExecutor, AfterShutdownQueuedWorkStillRunsNewWorkIsRefused) {
  absl::Notification release, started;
  int ran = 0;
  {
    BoundedExecutor ex(1, 4);
    ASSERT_TRUE(ex.Submit([&] {
                    started.Notify();
                    release.WaitForNotification();
                  }).ok());
    started.WaitForNotification();
    ASSERT_TRUE(ex.Submit([&] { ++ran; }).ok());
    ex.Shutdown();
    EXPECT_EQ(ex.Submit([] {}).code(), absl::StatusCode::kUnavailable);
    release.Notify();
  }  // joins
  EXPECT_EQ(ran, 1);
}

}  // namespace
}  // namespace orchestrator
