#pragma once

#include "gmock/gmock.h"
#include "services/common/peers/agent_driver.h"

namespace orchestrator {

class MockAgentDriver : public AgentDriver {
 public:
  MOCK_METHOD(absl::StatusOr<agents::v1::Worker>, Start,
              (const std::string&, const agents::v1::StartWorkerRequest&), (override));
  MOCK_METHOD(absl::StatusOr<agents::v1::Worker>, Get, (const std::string&, const std::string&),
              (override));
  MOCK_METHOD(absl::StatusOr<agents::v1::Worker>, Pause, (const std::string&, const std::string&),
              (override));
  MOCK_METHOD(absl::StatusOr<agents::v1::Worker>, Resume, (const std::string&, const std::string&),
              (override));
  MOCK_METHOD(absl::StatusOr<agents::v1::Worker>, Stop,
              (const std::string&, const std::string&, const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<agents::v1::Worker>, WaitUntilStarted,
              (const std::string&, const std::string&, absl::Duration, Cancellation&), (override));
  MOCK_METHOD(absl::StatusOr<agents::v1::TaskResult>, RunTask,
              (const std::string&, const agents::v1::RunTaskRequest&,
               const std::function<void(const agents::v1::AgentEvent&)>&, Cancellation&),
              (override));
  MOCK_METHOD(absl::StatusOr<agents::v1::CommandResult>, RunCommand,
              (const std::string&, const agents::v1::RunCommandRequest&,
               const std::function<void(const agents::v1::CommandOutput&)>&, Cancellation&),
              (override));
};

}  // namespace orchestrator
