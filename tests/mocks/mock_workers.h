#pragma once

#include "gmock/gmock.h"
#include "services/agents/domain/workers.h"

namespace orchestrator::agents {

class MockWorkers : public Workers {
 public:
  MOCK_METHOD(absl::StatusOr<v1::Worker>, Start, (const Principal&, const v1::StartWorkerRequest&),
              (override));
  MOCK_METHOD(absl::StatusOr<v1::Worker>, Get, (const Principal&, const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<v1::ListWorkersResponse>, List,
              (const Principal&, const v1::ListWorkersRequest&), (override));
  MOCK_METHOD(absl::StatusOr<v1::Worker>, Pause, (const Principal&, const std::string&),
              (override));
  MOCK_METHOD(absl::StatusOr<v1::Worker>, Resume, (const Principal&, const std::string&),
              (override));
  MOCK_METHOD(absl::StatusOr<v1::Worker>, Stop,
              (const Principal&, const std::string&, const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<std::string>, Finish, (const Principal&, const v1::FinishTaskRequest&),
              (override));
  MOCK_METHOD(absl::StatusOr<uint64_t>, Watch,
              (const Principal&, const std::string&, std::function<void(const v1::Worker&)>),
              (override));
  MOCK_METHOD(void, Unwatch, (const std::string&, uint64_t), (override));
  MOCK_METHOD(absl::StatusOr<std::string>, RunTask,
              (const Principal&, const v1::RunTaskRequest&, TaskListener, uint64_t*), (override));
  MOCK_METHOD(absl::StatusOr<std::string>, RunCommand,
              (const Principal&, const v1::RunCommandRequest&, TaskListener, uint64_t*),
              (override));
  MOCK_METHOD(void, Detach, (const std::string&, uint64_t, bool), (override));
  MOCK_METHOD(absl::StatusOr<v1::WorkerConfig>, RunnerConnected,
              (const Principal&, const v1::RunnerHello&, RunnerLink*), (override));
  MOCK_METHOD(void, RunnerEvent, (const std::string&, const v1::AgentEvent&), (override));
  MOCK_METHOD(void, RunnerResult, (const std::string&, const v1::TaskResult&), (override));
  MOCK_METHOD(void, RunnerGone, (const std::string&, RunnerLink*, const std::string&), (override));
};

}  // namespace orchestrator::agents
