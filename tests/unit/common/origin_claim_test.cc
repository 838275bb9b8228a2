#include "services/common/auth/origin_claim.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace orchestrator {
namespace {

using ::testing::HasSubstr;

TEST(OriginClaim, ReadsWhatItWrites) {
  const OriginClaim claim{.session_id = "ses_1", .message_id = "msg_a-b.c", .job_id = "job_9"};
  const std::string text = FormatOriginClaim(claim);
  EXPECT_EQ(text, "session:ses_1,message:msg_a-b.c,job:job_9");
  auto read = ParseOriginClaim(text);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->session_id, "ses_1");
  EXPECT_EQ(read->message_id, "msg_a-b.c");
  EXPECT_EQ(read->job_id, "job_9");
}

TEST(OriginClaim, EmptyAndPartial) {
  auto none = ParseOriginClaim("");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(FormatOriginClaim({}), "");
  auto job = ParseOriginClaim("job:job_x");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->job_id, "job_x");
  EXPECT_TRUE(job->message_id.empty());
}

TEST(OriginClaim, HostileTextIsRefusedNamingWhatIsWrong) {
  const std::string too_long = "job:" + std::string(600, 'a');
  const std::string long_id = "job:" + std::string(129, 'a');
  for (const auto& [text, says] : std::vector<std::pair<std::string, std::string>>{
           {"user:root", "is not session, message or job"},
           {"job:a,job:b", "named twice"},
           {"job:", "must be an id"},
           {"job", "must be an id"},
           {"message:a b", "must be an id"},
           {"message:a;b", "must be an id"},
           {"message:../x", "must be an id"},
           {std::string("job:a\0b", 7), "must be an id"},
           {"job:a,", "is not session"},
           {",", "is not session"},
           {long_id, "must be an id"},
           {too_long, "at most 512 bytes"},
       }) {
    auto read = ParseOriginClaim(text);
    ASSERT_FALSE(read.ok()) << text;
    EXPECT_EQ(read.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(read.status().message(), HasSubstr(says)) << text;
  }
}

}  // namespace
}  // namespace orchestrator
