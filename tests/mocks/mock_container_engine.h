#pragma once

#include "gmock/gmock.h"
#include "services/common/containers/container_engine.h"

namespace orchestrator::containers {

class MockContainerEngine : public ContainerEngine {
 public:
  MOCK_METHOD(absl::Status, Ping, (), (override));
  MOCK_METHOD(absl::StatusOr<std::string>, BuildImage,
              (const BuildSpec&, const std::function<void(const std::string&)>&,
               const std::atomic<bool>*),
              (override));
  MOCK_METHOD(absl::StatusOr<ImageInfo>, InspectImage, (const std::string&), (override));
  MOCK_METHOD(absl::Status, RemoveImage, (const std::string&, bool), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<ImageInfo>>, ListImages, (const std::vector<LabelMatch>&),
              (override));
  MOCK_METHOD(absl::Status, SaveImage,
              (const std::string&, const std::string&, const std::atomic<bool>*), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<std::string>>, LoadImages,
              (const std::string&, const std::atomic<bool>*), (override));
  MOCK_METHOD(absl::StatusOr<std::string>, CreateContainer, (const ContainerSpec&), (override));
  MOCK_METHOD(absl::Status, StartContainer, (const std::string&), (override));
  MOCK_METHOD(absl::Status, StopContainer, (const std::string&, absl::Duration), (override));
  MOCK_METHOD(absl::Status, RemoveContainer, (const std::string&, bool), (override));
  MOCK_METHOD(absl::StatusOr<ContainerInfo>, InspectContainer, (const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<ContainerSummary>>, ListContainers,
              (const std::vector<LabelMatch>&, bool), (override));
  MOCK_METHOD(absl::Status, Logs,
              (const std::string&, const LogOptions&, const std::function<bool(const LogLine&)>&,
               const std::atomic<bool>*),
              (override));
  MOCK_METHOD(absl::StatusOr<MemoryStats>, MemoryUsage, (const std::string&), (override));
};

}  // namespace orchestrator::containers
