// The job engine's worker against a mock queue: what it asks of the queue
// for a job that succeeds, one that fails for good, and jobs it reserved but
// never started when it stops. No database.
#include "services/jobs/engine/worker.h"

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mocks/mock_job_queue.h"

namespace orchestrator::jobs {
namespace {

using ::testing::_;
using ::testing::ElementsAre;
using ::testing::Invoke;
using ::testing::NiceMock;
using ::testing::Return;

v1::Job QueuedJob(const std::string& id, int max_attempts = 1) {
  v1::Job job;
  job.set_id(id);
  job.set_kind("test.kind");
  job.set_state(v1::JOB_STATE_QUEUED);
  job.set_max_attempts(max_attempts);
  return job;
}

class WorkerTest : public ::testing::Test {
 protected:
  WorkerTest() : queue_(std::make_shared<NiceMock<MockJobQueue>>()) {
    ON_CALL(*queue_, Claim).WillByDefault(Return(std::vector<v1::Job>{}));
    ON_CALL(*queue_, Heartbeat).WillByDefault(Return(absl::flat_hash_map<std::string, bool>{}));
    ON_CALL(*queue_, ReapExpiredLeases).WillByDefault(Return(0));
    ON_CALL(*queue_, Unreserve).WillByDefault(Return(absl::OkStatus()));
    ON_CALL(*queue_, AppendEvent).WillByDefault(Return(absl::OkStatus()));
    // Starting a reserved job: RUNNING, first attempt.
    ON_CALL(*queue_, Start)
        .WillByDefault(Invoke([](const std::string&, const std::vector<std::string>& ids,
                                 absl::Duration, absl::Time) {
          std::vector<v1::Job> started;
          for (const auto& id : ids) {
            v1::Job job = QueuedJob(id);
            job.set_state(v1::JOB_STATE_RUNNING);
            job.set_attempt(1);
            started.push_back(job);
          }
          return absl::StatusOr<std::vector<v1::Job>>(started);
        }));
  }

  std::unique_ptr<Worker> NewWorker(int concurrency = 2) {
    WorkerOptions options;
    options.worker_id = "wkr_test";
    options.concurrency = concurrency;
    options.poll = absl::Milliseconds(20);
    options.reap = absl::Seconds(60);
    return std::make_unique<Worker>(queue_, nullptr, options);
  }

  std::shared_ptr<NiceMock<MockJobQueue>> queue_;
};

TEST_F(WorkerTest, ASucceedingJobIsStartedThenFinishedSucceededWithItsResult) {
  EXPECT_CALL(*queue_, Claim)
      .WillOnce(Return(std::vector<v1::Job>{QueuedJob("job_1")}))
      .WillRepeatedly(Return(std::vector<v1::Job>{}));
  absl::Notification finished;
  EXPECT_CALL(*queue_, FinishSucceeded("wkr_test", _, _))
      .WillOnce(Invoke(
          [&](const std::string&, const std::vector<SuccessfulAttempt>& attempts, absl::Time) {
            EXPECT_EQ(attempts.size(), 1u);
            EXPECT_EQ(attempts[0].job_id, "job_1");
            EXPECT_EQ(attempts[0].attempt, 1);
            EXPECT_EQ(attempts[0].result.fields().at("answer").number_value(), 42);
            finished.Notify();
            return absl::StatusOr<std::vector<std::string>>(std::vector<std::string>{"job_1"});
          }));
  EXPECT_CALL(*queue_, Finish).Times(0);
  auto worker = NewWorker();
  worker->Register("test.kind", [](JobContext&) {
    google::protobuf::Struct result;
    (*result.mutable_fields())["answer"].set_number_value(42);
    return absl::StatusOr<google::protobuf::Struct>(result);
  });
  worker->Start();
  ASSERT_TRUE(finished.WaitForNotificationWithTimeout(absl::Seconds(10)));
  worker->Stop(absl::Seconds(1));
}

TEST_F(WorkerTest, APermanentFailureFinishesTheJobFailedWithTheHandlersMessage) {
  EXPECT_CALL(*queue_, Claim)
      .WillOnce(Return(std::vector<v1::Job>{QueuedJob("job_2", /*max_attempts=*/3)}))
      .WillRepeatedly(Return(std::vector<v1::Job>{}));
  absl::Notification finished;
  EXPECT_CALL(*queue_, Finish("wkr_test", ::testing::Property(&v1::Job::id, "job_2"), _, _))
      .WillOnce(Invoke(
          [&](const std::string&, const v1::Job&, const AttemptOutcome& outcome, absl::Time) {
            // INVALID_ARGUMENT is permanent: no retry although attempts remain.
            EXPECT_EQ(outcome.state, v1::JOB_STATE_FAILED);
            EXPECT_EQ(outcome.error.message(), "bad params");
            finished.Notify();
            return absl::StatusOr<bool>(true);
          }));
  auto worker = NewWorker();
  worker->Register("test.kind", [](JobContext&) {
    return absl::StatusOr<google::protobuf::Struct>(absl::InvalidArgumentError("bad params"));
  });
  worker->Start();
  ASSERT_TRUE(finished.WaitForNotificationWithTimeout(absl::Seconds(10)));
  worker->Stop(absl::Seconds(1));
}

TEST_F(WorkerTest, StoppingGivesBackReservedJobsNoHandlerStarted) {
  // One handler, busy until the stop: the second reserved job never starts.
  absl::Notification running, release;
  EXPECT_CALL(*queue_, Claim)
      .WillOnce(Return(std::vector<v1::Job>{QueuedJob("job_a"), QueuedJob("job_b")}))
      .WillRepeatedly(Return(std::vector<v1::Job>{}));
  ON_CALL(*queue_, Finish).WillByDefault(Return(true));
  ON_CALL(*queue_, Release).WillByDefault(Return(absl::OkStatus()));
  ON_CALL(*queue_, FinishSucceeded).WillByDefault(Return(std::vector<std::string>{"job_a"}));
  EXPECT_CALL(*queue_, Unreserve("wkr_test", ElementsAre("job_b")))
      .WillOnce(Return(absl::OkStatus()));
  auto worker = NewWorker(/*concurrency=*/1);
  worker->Register("test.kind", [&](JobContext& ctx) {
    running.Notify();
    while (!ctx.cancelled() && !release.HasBeenNotified()) ctx.Sleep(absl::Milliseconds(10));
    return absl::StatusOr<google::protobuf::Struct>(google::protobuf::Struct());
  });
  worker->Start();
  ASSERT_TRUE(running.WaitForNotificationWithTimeout(absl::Seconds(10)));
  worker->Stop(absl::Milliseconds(200));
  release.Notify();
}

}  // namespace
}  // namespace orchestrator::jobs
