// The Caddy route a Route becomes.
#include <nlohmann/json.hpp>

#include "gtest/gtest.h"
#include "services/common/router/caddy_router.h"

namespace orchestrator::router {
namespace {

using nlohmann::json;

TEST(CaddyRouteJson, IsAHostMatchedTerminalReverseProxy) {
  const Route route{.id = "orchestrator-prj-abc",
                    .hosts = {"prj-abc.localhost", "www.prj-abc.localhost"},
                    .upstream = "127.0.0.1:41234"};
  const json parsed = json::parse(CaddyRouteJson(route));
  EXPECT_EQ(parsed, json::parse(R"({
    "@id": "orchestrator-prj-abc",
    "match": [{"host": ["prj-abc.localhost", "www.prj-abc.localhost"]}],
    "handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": "127.0.0.1:41234"}]}],
    "terminal": true
  })"));
}

TEST(CaddyRouteJson, KeepsAnIpv6UpstreamBracketed) {
  const Route route{.id = "orchestrator-a", .hosts = {"a.localhost"}, .upstream = "[::1]:8080"};
  const json parsed = json::parse(CaddyRouteJson(route));
  EXPECT_EQ(parsed["handle"][0]["upstreams"][0]["dial"], "[::1]:8080");
  EXPECT_EQ(parsed["match"][0]["host"], json::array({"a.localhost"}));
}

}  // namespace
}  // namespace orchestrator::router
