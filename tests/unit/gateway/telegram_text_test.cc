// What the bridge sends Telegram fits its rules (4096 UTF-16 units, HTML
// escaped), and what it reads from Telegram is parsed or refused.
#include "gateway/telegram/telegram_text.h"

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace orchestrator::gateway::telegram {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

size_t Utf16Units(const std::string& s) {
  size_t units = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) != 0x80) units += (c >= 0xF0) ? 2 : 1;
  }
  return units;
}

TEST(SplitMessageTest, ShortTextIsOnePart) {
  EXPECT_THAT(SplitMessage("hello"), ElementsAre("hello"));
  EXPECT_THAT(SplitMessage(""), ElementsAre(""));
  EXPECT_THAT(SplitMessage(std::string(4096, 'a')), ElementsAre(std::string(4096, 'a')));
}

TEST(SplitMessageTest, LongTextSplitsAtALineBreakAndLosesNothing) {
  const std::string text = std::string(3000, 'a') + "\n" + std::string(3000, 'b');
  auto parts = SplitMessage(text);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0], std::string(3000, 'a') + "\n");
  EXPECT_EQ(absl::StrJoin(parts, ""), text);
}

TEST(SplitMessageTest, CountsUtf16UnitsAndNeverCutsACharacter) {
  std::string emoji;
  for (int i = 0; i < 3000; ++i) emoji += "😀";  // 2 UTF-16 units each
  auto parts = SplitMessage(emoji);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(Utf16Units(parts[0]), 4096u);
  EXPECT_EQ(absl::StrJoin(parts, ""), emoji);
  for (const auto& p : parts) EXPECT_LE(Utf16Units(p), kMaxMessageLength);
  // Without breaks or spaces, hard cuts at the limit.
  EXPECT_EQ(SplitMessage(std::string(9000, 'x')).size(), 3u);
}

// What the fuzzer found: after a cut at a space, the rest plus the next
// character could overflow the part. Every small limit, many texts.
TEST(SplitMessageTest, NoPartIsOverTheLimitWhateverTheText) {
  const std::string pieces[] = {"a", " ", "\n", "é", "😀", "bc", "\x01"};
  uint32_t seed = 12345;
  for (int round = 0; round < 2000; ++round) {
    std::string text;
    const int n = round % 40;
    for (int i = 0; i < n; ++i) {
      seed = seed * 1103515245 + 12345;
      text += pieces[(seed >> 16) % 7];
    }
    for (size_t limit : {2u, 3u, 4u, 7u, 16u}) {
      const auto parts = SplitMessage(text, limit);
      for (const auto& p : parts) ASSERT_LE(Utf16Units(p), limit) << text << " / " << limit;
      ASSERT_EQ(absl::StrJoin(parts, ""), text) << limit;
    }
  }
}

TEST(SplitMessageTest, InvalidUtf8BecomesReplacementCharacters) {
  EXPECT_THAT(SplitMessage("a\xff"
                           "b"),
              ElementsAre("a\xEF\xBF\xBD"
                          "b"));
}

TEST(EscapeHtmlTest, EscapesWhatHtmlParseModeReads) {
  EXPECT_EQ(EscapeHtml("<b>a & b</b> \"q\""), "&lt;b&gt;a &amp; b&lt;/b&gt; \"q\"");
}

TEST(ParseUpdateTest, ReadsMessagesAndCallbacksIgnoringNewFields) {
  auto u = ParseUpdate(R"({"update_id":7,"message":{"message_id":3,"date":1,"from":{"id":42,
      "is_bot":false,"first_name":"Ann","is_premium":true},"chat":{"id":42,"type":"private"},
      "text":"/status","entities":[{"type":"bot_command","offset":0,"length":7}]}})");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->update_id(), 7);
  EXPECT_EQ(u->message().from().id(), 42);
  EXPECT_EQ(u->message().text(), "/status");
  auto cb = ParseUpdate(R"({"update_id":8,"callback_query":{"id":"q1","from":{"id":42},
      "message":{"message_id":5,"chat":{"id":42}},"data":"keep:j1"}})");
  ASSERT_TRUE(cb.ok()) << cb.status();
  EXPECT_EQ(cb->callback_query().data(), "keep:j1");
}

TEST(ParseUpdateTest, RefusesWhatIsNotAnUpdate) {
  for (const char* bad : {"", "{", "[]", "null", R"({"update_id":"x"})", R"({"message":{}})",
                          R"({"update_id":1,"message":"text"})",
                          R"({"update_id":1,"message":{"from":{"id":"ann"}}})"}) {
    auto u = ParseUpdate(bad);
    EXPECT_FALSE(u.ok()) << bad;
    EXPECT_THAT(u.status().message(), HasSubstr("not a Telegram update")) << bad;
  }
}

TEST(ParseCommandTest, NameAndArgument) {
  EXPECT_EQ(ParseCommand("/cancel@my_bot job_1 "),
            std::make_pair(std::string("cancel"), std::string("job_1")));
  EXPECT_EQ(ParseCommand("/HELP"), std::make_pair(std::string("help"), std::string()));
  EXPECT_EQ(ParseCommand("hello /help"), std::make_pair(std::string(), std::string()));
}

}  // namespace
}  // namespace orchestrator::gateway::telegram
