#pragma once

#include "gmock/gmock.h"
#include "services/common/router/router.h"

namespace orchestrator::router {

class MockRouter : public Router {
 public:
  MOCK_METHOD(absl::Status, EnsureServer, (), (override));
  MOCK_METHOD(absl::Status, PutRoute, (const Route&), (override));
  MOCK_METHOD(absl::Status, RemoveRoute, (const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<Route>>, ListRoutes, (), (override));
  MOCK_METHOD(absl::StatusOr<ReconcileReport>, Reconcile, (const std::vector<Route>&), (override));
};

}  // namespace orchestrator::router
