#include "services/deploy/adapters/http_health_probe.h"

#include "absl/strings/str_cat.h"
#include "services/common/http/http_client.h"

namespace orchestrator::deploy {

absl::StatusOr<int> HttpHealthProbe::Get(int port, const std::string& path,
                                         absl::Duration timeout) {
  std::string address = absl::StrCat("127.0.0.1:", port);
  if (address_of_) {
    auto reached = address_of_(port);
    if (!reached.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the server is not reachable: ", reached.status().message()));
    }
    address = *std::move(reached);
  }
  return http::GetStatus(address, path, "", timeout, "orchestrator-health-gate");
}

}  // namespace orchestrator::deploy
