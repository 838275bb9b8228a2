// Base URLs the HTTP client is configured with (flags like
// --telegram_api_base, a GitHub api_url).
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/http/http_client.h"

namespace orchestrator::http {
namespace {

using ::testing::HasSubstr;

TEST(BaseUrl, HttpsWithoutPortIs443AndNoPrefix) {
  auto url = BaseUrl::Parse("https://api.github.com");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_TRUE(url->tls);
  EXPECT_EQ(url->host, "api.github.com");
  EXPECT_EQ(url->port, "443");
  EXPECT_EQ(url->path_prefix, "");
  EXPECT_EQ(url->Authority(), "api.github.com:443");
  EXPECT_EQ(url->HostHeader(), "api.github.com");
}

TEST(BaseUrl, HttpWithPortAndPrefixDropsTrailingSlashes) {
  auto url = BaseUrl::Parse("http://127.0.0.1:8080/api/v3//");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_FALSE(url->tls);
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, "8080");
  EXPECT_EQ(url->path_prefix, "/api/v3");
  EXPECT_EQ(url->HostHeader(), "127.0.0.1:8080");
}

TEST(BaseUrl, DefaultPortIsLeftOutOfTheHostHeader) {
  auto url = BaseUrl::Parse("http://example.com:80/");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->port, "80");
  EXPECT_EQ(url->path_prefix, "");
  EXPECT_EQ(url->HostHeader(), "example.com");
}

TEST(BaseUrl, Ipv6LiteralKeepsItsBracketsOnlyWhereNeeded) {
  auto url = BaseUrl::Parse("https://[::1]:8443/x");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, "8443");
  EXPECT_EQ(url->path_prefix, "/x");
  EXPECT_EQ(url->Authority(), "[::1]:8443");
  EXPECT_EQ(url->HostHeader(), "[::1]:8443");
  auto no_port = BaseUrl::Parse("http://[::1]");
  ASSERT_TRUE(no_port.ok()) << no_port.status();
  EXPECT_EQ(no_port->port, "80");
}

TEST(BaseUrl, UnixSocketIsItsAbsolutePathWithHostLocalhost) {
  auto url = BaseUrl::Parse("unix:///run/podman/podman.sock");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_FALSE(url->tls);
  EXPECT_EQ(url->unix_socket, "/run/podman/podman.sock");
  EXPECT_EQ(url->host, "localhost");
  EXPECT_EQ(url->path_prefix, "");
  EXPECT_EQ(url->Authority(), "unix:///run/podman/podman.sock");
  EXPECT_EQ(url->HostHeader(), "localhost");
}

TEST(BaseUrl, RefusesAUnixSocketPathItCannotConnectTo) {
  const std::string too_long = "unix:///" + std::string(107, 's');
  for (const std::string& bad :
       {std::string("unix://"), std::string("unix://run/podman.sock"),
        std::string("unix:///run/podman.sock?x=1"), std::string("unix:///run/podman.sock#f"),
        std::string("unix:///run/\0podman.sock", 24), too_long}) {
    auto url = BaseUrl::Parse(bad);
    EXPECT_EQ(url.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_THAT(BaseUrl::Parse(too_long).status().message(), HasSubstr("longer than 107 bytes"));
  EXPECT_TRUE(BaseUrl::Parse("unix:///" + std::string(106, 's')).ok());
}

TEST(BaseUrl, RefusesWhatItCannotReach) {
  for (const char* bad :
       {"", "api.github.com", "ftp://example.com", "http://", "http://:80", "http://host:0",
        "http://host:65536", "http://host:x", "http://host:+80", "http://[::1", "http://[::1]x",
        "https://host/path?query", "https://host#fragment", "unix:/run/podman.sock"}) {
    auto url = BaseUrl::Parse(bad);
    EXPECT_EQ(url.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(BaseUrl, RefusesCredentialsWithoutRepeatingThem) {
  auto url = BaseUrl::Parse("https://user:hunter2@example.com");
  EXPECT_EQ(url.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(url.status().message(), HasSubstr("credentials"));
  EXPECT_THAT(url.status().message(), ::testing::Not(HasSubstr("hunter2")));
}

TEST(Response, HeaderIsCaseInsensitiveAndFirstWins) {
  Response response;
  response.headers = {{"X-RateLimit-Remaining", "0"}, {"x-ratelimit-remaining", "5"}};
  EXPECT_EQ(response.Header("x-ratelimit-remaining"), "0");
  EXPECT_EQ(response.Header("Retry-After"), "");
}

}  // namespace
}  // namespace orchestrator::http
