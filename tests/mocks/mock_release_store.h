#pragma once

#include "gmock/gmock.h"
#include "services/deploy/domain/release_store.h"

namespace orchestrator::deploy {

class MockReleaseStore : public ReleaseStore {
 public:
  MOCK_METHOD(absl::StatusOr<std::string>, InstallationId, (), (override));
  MOCK_METHOD(absl::StatusOr<v1::Release>, EnsureForJob, (const v1::Release&), (override));
  MOCK_METHOD(absl::StatusOr<v1::Release>, Get, (const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<std::optional<v1::Release>>, Live, (const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<v1::Release>>, AllLive, (), (override));
  MOCK_METHOD(absl::StatusOr<Page<v1::Release>>, List,
              (const std::string&, v1::ReleaseStatus, const PageRequest&), (override));
  MOCK_METHOD(absl::Status, SetRuntime, (const v1::Release&), (override));
  MOCK_METHOD(absl::StatusOr<std::optional<v1::Release>>, MakeLive,
              (const std::string&, const std::string&, absl::Time), (override));
  MOCK_METHOD(absl::Status, RecordUnhealthy, (const std::string&, const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<int>, RecordProbe, (const std::string&, bool), (override));
  MOCK_METHOD(absl::Status, MarkFailed, (const std::string&, const std::string&), (override));
  MOCK_METHOD(absl::Status, FailAbandoned,
              (const std::string&, const std::string&, const std::string&), (override));
};

}  // namespace orchestrator::deploy
