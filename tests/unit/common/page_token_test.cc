#include "services/common/pagination/page_token.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace orchestrator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(PageToken, RoundTripsTheLastKeys) {
  std::string token = MakePageToken("owner=u1;status=0", {"1700000000123456", "prj_a|b:c"});
  auto page = ParsePageRequest(10, token, "owner=u1;status=0", 50, 500);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->page_size, 10);
  EXPECT_THAT(page->after, ElementsAre("1700000000123456", "prj_a|b:c"));
}

TEST(PageToken, IsOpaqueAndUrlSafe) {
  std::string token = MakePageToken("f", {"key with spaces/and+plus"});
  EXPECT_EQ(
      token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
      std::string::npos);
  EXPECT_EQ(token.find("key"), std::string::npos);
}

TEST(PageToken, ReplayedWithOtherFiltersIsRefused) {
  std::string token = MakePageToken("owner=u1;status=0", {"1", "a"});
  auto page = ParsePageRequest(10, token, "owner=u1;status=3", 50, 500);
  EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(page.status().message(), HasSubstr("page_token"));
}

TEST(PageToken, GarbageIsInvalidArgumentNamingTheField) {
  for (const char* bad : {"!!!", "AAAA", "cDE6eA", "MTp4"}) {
    auto page = ParsePageRequest(10, bad, "f", 50, 500);
    EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(page.status().message(), HasSubstr("page_token")) << bad;
  }
}

TEST(PageSize, ZeroMeansDefaultLargeIsClampedNegativeIsRefused) {
  EXPECT_EQ(ParsePageRequest(0, "", "f", 50, 500)->page_size, 50);
  EXPECT_EQ(ParsePageRequest(100000, "", "f", 50, 500)->page_size, 500);
  auto negative = ParsePageRequest(-1, "", "f", 50, 500);
  EXPECT_EQ(negative.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(negative.status().message(), HasSubstr("page_size"));
}

}  // namespace
}  // namespace orchestrator
