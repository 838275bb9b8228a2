#include "services/deploy/adapters/http_health_probe.h"

#include "absl/strings/str_cat.h"
#include "services/common/http/http_client.h"

namespace orchestrator::deploy {

absl::StatusOr<int> HttpHealthProbe::Get(int port, const std::string& path,
                                         absl::Duration timeout) {
  auto base = http::BaseUrl::Parse(absl::StrCat("http://127.0.0.1:", port));
  if (!base.ok()) return base.status();
  http::ClientOptions options;
  options.user_agent = "orchestrator-health-gate";
  options.max_response_bytes = 64 << 10;
  http::HttpClient client(*base, options);
  http::Request request;
  request.target = path;
  request.timeout = timeout;
  auto response = client.Send(request);
  if (!response.ok()) return response.status();
  return response->status;
}

}  // namespace orchestrator::deploy
