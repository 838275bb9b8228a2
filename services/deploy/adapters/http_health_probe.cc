#include "services/deploy/adapters/http_health_probe.h"

#include "absl/strings/str_cat.h"
#include "services/common/http/http_client.h"

namespace orchestrator::deploy {

absl::StatusOr<int> HttpHealthProbe::Get(int port, const std::string& path,
                                         absl::Duration timeout) {
  return http::GetStatus(absl::StrCat("127.0.0.1:", port), path, "", timeout,
                         "orchestrator-health-gate");
}

}  // namespace orchestrator::deploy
