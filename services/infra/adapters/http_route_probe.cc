#include "services/infra/adapters/http_route_probe.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "services/common/http/http_client.h"

namespace orchestrator::infra {

absl::StatusOr<int> HttpRouteProbe::Get(const std::string& host, const std::string& path,
                                        absl::Duration timeout) {
  std::string address =
      absl::StartsWith(listen_, ":") ? absl::StrCat("127.0.0.1", listen_) : listen_;
  if (address_of_) {
    int port = 0;
    if (!absl::SimpleAtoi(listen_.substr(listen_.rfind(':') + 1), &port)) {
      return absl::FailedPreconditionError(absl::StrCat("the router listens at '", listen_, "'"));
    }
    auto reached = address_of_(port);
    if (!reached.ok()) return reached.status();
    address = *std::move(reached);
  }
  return http::GetStatus(address, path, host, timeout, "orchestrator-health-check");
}

}  // namespace orchestrator::infra
