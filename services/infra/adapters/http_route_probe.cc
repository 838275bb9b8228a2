#include "services/infra/adapters/http_route_probe.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/http/http_client.h"

namespace orchestrator::infra {

absl::StatusOr<int> HttpRouteProbe::Get(const std::string& host, const std::string& path,
                                        absl::Duration timeout) {
  const std::string address =
      absl::StartsWith(listen_, ":") ? absl::StrCat("127.0.0.1", listen_) : listen_;
  return http::GetStatus(address, path, host, timeout, "orchestrator-health-check");
}

}  // namespace orchestrator::infra
