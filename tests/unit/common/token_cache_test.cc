#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/auth/token_verifier.h"

namespace orchestrator {
namespace {

using ::testing::Return;
using ::testing::StrictMock;

class MockTokenVerifier : public TokenVerifier {
 public:
  MOCK_METHOD(absl::StatusOr<Principal>, Verify, (absl::string_view token), (override));
};

struct FakeClock {
  std::chrono::steady_clock::time_point now{};
};

TEST(CachingTokenVerifier, AsksTheSourceOncePerTtl) {
  auto source = std::make_shared<StrictMock<MockTokenVerifier>>();
  FakeClock clock;
  CachingTokenVerifier cache(source, std::chrono::seconds(5), [&] { return clock.now; });
  EXPECT_CALL(*source, Verify(absl::string_view("orc_a")))
      .Times(2)
      .WillRepeatedly(Return(Principal{.user_id = "u1"}));
  EXPECT_EQ(cache.Verify("orc_a")->user_id, "u1");
  clock.now += std::chrono::seconds(4);
  EXPECT_EQ(cache.Verify("orc_a")->user_id, "u1");  // cached
  clock.now += std::chrono::seconds(2);
  EXPECT_EQ(cache.Verify("orc_a")->user_id, "u1");  // expired: asked again
}

TEST(CachingTokenVerifier, FailuresAreNotCachedAndForgetAllRechecks) {
  auto source = std::make_shared<StrictMock<MockTokenVerifier>>();
  FakeClock clock;
  CachingTokenVerifier cache(source, std::chrono::seconds(5), [&] { return clock.now; });
  EXPECT_CALL(*source, Verify(absl::string_view("orc_bad")))
      .Times(2)
      .WillRepeatedly(Return(absl::UnauthenticatedError("invalid token")));
  EXPECT_FALSE(cache.Verify("orc_bad").ok());
  EXPECT_FALSE(cache.Verify("orc_bad").ok());

  EXPECT_CALL(*source, Verify(absl::string_view("orc_rev")))
      .WillOnce(Return(Principal{.user_id = "u1"}))
      .WillOnce(Return(absl::UnauthenticatedError("token revoked")));
  EXPECT_TRUE(cache.Verify("orc_rev").ok());
  cache.ForgetAll();  // what a revocation does
  EXPECT_EQ(cache.Verify("orc_rev").status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(CachingTokenVerifier, AnExpiredTokenIsRefusedAtOnceEvenWhenRemembered) {
  auto source = std::make_shared<StrictMock<MockTokenVerifier>>();
  FakeClock clock;
  absl::Time wall = absl::FromUnixSeconds(1000);
  CachingTokenVerifier cache(
      source, std::chrono::seconds(5), [&] { return clock.now; }, [&] { return wall; });
  EXPECT_CALL(*source, Verify(absl::string_view("orc_short")))
      .WillOnce(Return(Principal{.user_id = "u1", .expire_time = absl::FromUnixSeconds(1001)}))
      .WillOnce(Return(absl::UnauthenticatedError("token expired; ask for a new one")));
  EXPECT_TRUE(cache.Verify("orc_short").ok());
  wall = absl::FromUnixSeconds(1001);  // the token's expire_time; the cache entry is 0 s old
  EXPECT_EQ(cache.Verify("orc_short").status().code(), absl::StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace orchestrator
