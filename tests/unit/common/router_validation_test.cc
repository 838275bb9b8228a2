// What a route, a desired set and a CaddyRouter's config may hold: nothing
// else reaches Caddy's JSON.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/router/caddy_router.h"
#include "services/common/router/route_validation.h"

namespace orchestrator::router {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kPrefix[] = "orchestrator-";

Route ValidRoute() {
  return {.id = "orchestrator-prj-abc",
          .hosts = {"prj-abc.localhost", "www.prj-abc.example.com"},
          .upstream = "127.0.0.1:41234"};
}

absl::Status Check(const Route& route) { return ValidateRoute("route", route, kPrefix); }

TEST(RouteValidation, AcceptsAProjectRoute) {
  EXPECT_TRUE(Check(ValidRoute()).ok()) << Check(ValidRoute());
  for (const std::string& upstream : std::vector<std::string>{
           "[::1]:8080", "localhost:1", "web.internal:65535", "10.0.0.7:80", "[fe80::1]:443"}) {
    Route route = ValidRoute();
    route.upstream = upstream;
    EXPECT_TRUE(Check(route).ok()) << upstream << ": " << Check(route);
  }
  Route single = ValidRoute();
  single.hosts = {"localhost"};
  EXPECT_TRUE(Check(single).ok()) << Check(single);
}

TEST(RouteValidation, RejectsIdsOutsideThePrefixOrAlphabet) {
  for (const std::string& id : std::vector<std::string>{
           "", "orchestrator-", "prj-abc", "other-prj-abc", "orchestrator-Prj", "orchestrator-a_b",
           "orchestrator-a/b", "orchestrator-a\"b", "orchestrator-a b", "orchestrator-\n",
           "orchestrator-" + std::string(116, 'a')}) {
    Route route = ValidRoute();
    route.id = id;
    const absl::Status status = Check(route);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << id;
    EXPECT_THAT(std::string(status.message()), StartsWith("route.id: ")) << id;
  }
  Route longest = ValidRoute();
  longest.id = "orchestrator-" + std::string(115, 'a');
  EXPECT_TRUE(Check(longest).ok()) << Check(longest);
}

TEST(RouteValidation, RejectsHostsThatAreNotLowercaseDnsNames) {
  const std::string label63(63, 'a');
  for (const std::string& host : std::vector<std::string>{
           "", "*.prj.localhost", "Prj.localhost", "prj.localhost.", ".prj", "prj..localhost",
           "-prj.localhost", "prj-.localhost", "prj_abc.localhost", "prj.localhost:80",
           "prj.localhost/x", "prj\".localhost", "prj localhost", "prj.localhost\r\nX: y",
           label63 + "a.localhost",
           absl::StrCat(label63, ".", label63, ".", label63, ".", label63, ".x")}) {
    Route route = ValidRoute();
    route.hosts = {"ok.localhost", host};
    const absl::Status status = Check(route);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << host;
    EXPECT_THAT(std::string(status.message()), StartsWith("route.hosts[1]: ")) << host;
  }
  Route longest = ValidRoute();
  longest.hosts = {absl::StrCat(label63, ".", label63, ".", label63, ".", std::string(61, 'b'))};
  EXPECT_EQ(longest.hosts[0].size(), 253u);
  EXPECT_TRUE(Check(longest).ok()) << Check(longest);
}

TEST(RouteValidation, RejectsNoHostsTooManyAndRepeats) {
  Route none = ValidRoute();
  none.hosts.clear();
  EXPECT_THAT(std::string(Check(none).message()), StartsWith("route.hosts: has 0 hosts"));
  Route many = ValidRoute();
  many.hosts.clear();
  for (int i = 0; i < 17; ++i) many.hosts.push_back(absl::StrCat("h", i, ".localhost"));
  EXPECT_THAT(std::string(Check(many).message()), StartsWith("route.hosts: has 17 hosts"));
  Route twice = ValidRoute();
  twice.hosts = {"a.localhost", "a.localhost"};
  EXPECT_THAT(std::string(Check(twice).message()),
              HasSubstr("route.hosts[1]: \"a.localhost\" is listed twice"));
}

TEST(RouteValidation, RejectsUpstreamsThatAreNotHostAndPort) {
  for (const std::string& upstream : std::vector<std::string>{"",
                                                              "127.0.0.1",
                                                              "127.0.0.1:",
                                                              ":8080",
                                                              "127.0.0.1:0",
                                                              "127.0.0.1:65536",
                                                              "127.0.0.1:08080",
                                                              "127.0.0.1:+80",
                                                              "127.0.0.1:80a",
                                                              "::1:8080",
                                                              "[::1]",
                                                              "[::1:8080",
                                                              "[not-v6]:80",
                                                              "300.0.0.1:80",
                                                              "1.2.3:80",
                                                              "http://127.0.0.1:80",
                                                              "127.0.0.1:80/x",
                                                              "unix//tmp/sock",
                                                              "Host:80",
                                                              "a b:80",
                                                              "127.0.0.1:80\"}"}) {
    Route route = ValidRoute();
    route.upstream = upstream;
    const absl::Status status = Check(route);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << upstream;
    EXPECT_THAT(std::string(status.message()), StartsWith("route.upstream: ")) << upstream;
  }
}

TEST(RouteValidation, ErrorsQuoteTheValueEscapedAndShort) {
  Route route = ValidRoute();
  route.hosts = {std::string("evil\n\x01") + std::string(1000, 'x')};
  const absl::Status status = Check(route);
  EXPECT_THAT(std::string(status.message()), HasSubstr("\"evil\\n\\x01xxx"));
  EXPECT_LT(status.message().size(), 250u);
}

TEST(RouteSetValidation, RejectsRepeatedIdsAndSharedHosts) {
  Route a = ValidRoute();
  Route b = ValidRoute();
  b.id = "orchestrator-prj-def";
  b.hosts = {"prj-def.localhost"};
  EXPECT_TRUE(ValidateRouteSet({a, b}, kPrefix).ok());
  EXPECT_TRUE(ValidateRouteSet({}, kPrefix).ok());

  EXPECT_EQ(ValidateRouteSet({a, a}, kPrefix).message(),
            "desired[1].id: \"orchestrator-prj-abc\" is desired twice");
  b.hosts = {"prj-def.localhost", "www.prj-abc.example.com"};
  EXPECT_EQ(ValidateRouteSet({a, b}, kPrefix).message(),
            "desired[1].hosts[1]: \"www.prj-abc.example.com\" is also a host of "
            "\"orchestrator-prj-abc\"");
  b.upstream = "nowhere";
  EXPECT_THAT(std::string(ValidateRouteSet({a, b}, kPrefix).message()),
              StartsWith("desired[1].upstream: "));
}

TEST(RouteSetValidation, IsBounded) {
  std::vector<Route> routes(kMaxRoutes + 1, ValidRoute());
  EXPECT_EQ(ValidateRouteSet(routes, kPrefix).message(),
            "desired: has 10001 routes; at most 10000 are allowed");
}

TEST(CaddyRouterConfig, IsCheckedBeforeAnythingIsSent) {
  EXPECT_TRUE(CaddyRouter::FromConfig({}).ok());
  const auto field_of = [](CaddyRouterConfig config) {
    auto router = CaddyRouter::FromConfig(std::move(config));
    EXPECT_EQ(router.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(router.status().message());
    return message.substr(0, message.find(':'));
  };
  EXPECT_EQ(field_of({.admin_url = "ftp://127.0.0.1:2019"}), "admin_url");
  EXPECT_EQ(field_of({.admin_url = "http://127.0.0.1:2019", .server_name = "a/b"}), "server_name");
  EXPECT_EQ(field_of({.server_name = ""}), "server_name");
  EXPECT_EQ(field_of({.listen = "8080"}), "listen");
  EXPECT_EQ(field_of({.listen = ":0"}), "listen");
  EXPECT_EQ(field_of({.route_id_prefix = ""}), "route_id_prefix");
  EXPECT_EQ(field_of({.route_id_prefix = "Orch."}), "route_id_prefix");
  EXPECT_EQ(field_of({.timeout = absl::ZeroDuration()}), "timeout");
  for (const std::string& listen :
       std::vector<std::string>{":8080", "127.0.0.1:8080", "[::1]:80", "localhost:80"}) {
    EXPECT_TRUE(CaddyRouter::FromConfig({.listen = listen}).ok()) << listen;
  }
}

}  // namespace
}  // namespace orchestrator::router
