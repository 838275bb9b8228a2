#pragma once

#include "gmock/gmock.h"
#include "services/projects/domain/project_store.h"

namespace orchestrator::projects {

class MockProjectStore : public ProjectStore {
 public:
  MOCK_METHOD(absl::StatusOr<v1::Project>, Insert, (const v1::Project&, absl::string_view),
              (override));
  MOCK_METHOD(absl::StatusOr<v1::Project>, Get, (absl::string_view), (override));
  MOCK_METHOD(absl::StatusOr<Page<v1::Project>>, List, (const ProjectFilter&, const PageRequest&),
              (override));
  MOCK_METHOD(absl::StatusOr<v1::Project>, Update,
              (const v1::Project&, const std::vector<std::string>&), (override));
  MOCK_METHOD(absl::Status, Delete, (absl::string_view), (override));
  MOCK_METHOD(absl::StatusOr<v1::Secret>, PutSecret,
              (absl::string_view, absl::string_view, absl::string_view), (override));
  MOCK_METHOD(absl::StatusOr<Page<v1::Secret>>, ListSecrets,
              (absl::string_view, const PageRequest&), (override));
  MOCK_METHOD(absl::StatusOr<std::string>, GetSealedSecret, (absl::string_view, absl::string_view),
              (override));
  MOCK_METHOD(absl::Status, DeleteSecret, (absl::string_view, absl::string_view), (override));
};

}  // namespace orchestrator::projects
