#pragma once

#include "gmock/gmock.h"
#include "services/jobs/domain/job_queue.h"

namespace orchestrator::jobs {

class MockJobQueue : public JobQueue {
 public:
  MOCK_METHOD(absl::StatusOr<std::vector<v1::Job>>, Claim,
              (const std::string&, const std::vector<std::string>&, const ClaimLimits&, int,
               absl::Duration, absl::Time),
              (override));
  MOCK_METHOD(absl::StatusOr<std::vector<v1::Job>>, Start,
              (const std::string&, const std::vector<std::string>&, absl::Duration, absl::Time),
              (override));
  MOCK_METHOD(absl::Status, Unreserve, (const std::string&, const std::vector<std::string>&),
              (override));
  MOCK_METHOD((absl::StatusOr<absl::flat_hash_map<std::string, bool>>), Heartbeat,
              (const std::string&, const std::vector<std::string>&, absl::Duration, absl::Time),
              (override));
  MOCK_METHOD(absl::Status, AppendEvent,
              (const std::string&, const std::string&, const v1::JobEvent&, absl::Time),
              (override));
  MOCK_METHOD(absl::StatusOr<bool>, Finish,
              (const std::string&, const v1::Job&, const AttemptOutcome&, absl::Time), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<std::string>>, FinishSucceeded,
              (const std::string&, const std::vector<SuccessfulAttempt>&, absl::Time), (override));
  MOCK_METHOD(absl::Status, Release, (const std::string&, const v1::Job&, absl::Time), (override));
  MOCK_METHOD(absl::StatusOr<int>, ReapExpiredLeases, (absl::Time), (override));
};

}  // namespace orchestrator::jobs
