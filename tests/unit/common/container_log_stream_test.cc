// A container's log stream as the engine sends it, split into lines.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/containers/log_stream.h"

namespace orchestrator::containers {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Source = LogLine::Source;

// A frame of the multiplexed stream: 1 stdout, 2 stderr.
std::string Frame(int stream, absl::string_view payload) {
  std::string frame(8, '\0');
  frame[0] = static_cast<char>(stream);
  const size_t n = payload.size();
  frame[4] = static_cast<char>((n >> 24) & 0xff);
  frame[5] = static_cast<char>((n >> 16) & 0xff);
  frame[6] = static_cast<char>((n >> 8) & 0xff);
  frame[7] = static_cast<char>(n & 0xff);
  return absl::StrCat(frame, payload);
}

// "O:text" / "E:text" for each line handed over.
class Lines {
 public:
  std::function<bool(const LogLine&)> Sink(size_t stop_after = SIZE_MAX) {
    return [this, stop_after](const LogLine& line) {
      seen.push_back(absl::StrCat(line.source == Source::kStdout ? "O:" : "E:", line.text));
      times.push_back(line.time);
      return seen.size() < stop_after;
    };
  }
  std::vector<std::string> seen;
  std::vector<std::optional<absl::Time>> times;
};

TEST(LogStreamDecoder, SeparatesStdoutFromStderrLineByLine) {
  Lines lines;
  LogStreamDecoder decoder(LogStreamDecoder::Framing::kMultiplexed, false, 1024, lines.Sink());
  ASSERT_TRUE(decoder.Feed(Frame(1, "starting\nlistening on 8080\n")).ok());
  ASSERT_TRUE(decoder.Feed(Frame(2, "warning: debug mode\n")).ok());
  decoder.Finish();
  EXPECT_THAT(lines.seen,
              ElementsAre("O:starting", "O:listening on 8080", "E:warning: debug mode"));
}

TEST(LogStreamDecoder, ReassemblesFramesAndLinesSplitAnywhere) {
  const std::string stream = absl::StrCat(Frame(1, "hel"), Frame(2, "oops "), Frame(1, "lo\nwor"),
                                          Frame(2, "again\n"), Frame(1, "ld\r\n"));
  // Every way of cutting the stream in two gives the same lines.
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    Lines lines;
    LogStreamDecoder decoder(LogStreamDecoder::Framing::kMultiplexed, false, 1024, lines.Sink());
    ASSERT_TRUE(decoder.Feed(absl::string_view(stream).substr(0, cut)).ok());
    ASSERT_TRUE(decoder.Feed(absl::string_view(stream).substr(cut)).ok());
    decoder.Finish();
    EXPECT_THAT(lines.seen, ElementsAre("O:hello", "E:oops again", "O:world")) << cut;
  }
}

TEST(LogStreamDecoder, HandsOverAnUnfinishedLastLineAtTheEnd) {
  Lines lines;
  LogStreamDecoder decoder(LogStreamDecoder::Framing::kMultiplexed, false, 1024, lines.Sink());
  ASSERT_TRUE(decoder.Feed(Frame(1, "done\npartial")).ok());
  EXPECT_THAT(lines.seen, ElementsAre("O:done"));
  decoder.Finish();
  EXPECT_THAT(lines.seen, ElementsAre("O:done", "O:partial"));
}

TEST(LogStreamDecoder, LongLinesComeInBoundedPieces) {
  Lines lines;
  LogStreamDecoder decoder(LogStreamDecoder::Framing::kMultiplexed, false, 100, lines.Sink());
  ASSERT_TRUE(decoder.Feed(Frame(1, absl::StrCat(std::string(250, 'x'), "\nnext\n"))).ok());
  decoder.Finish();
  EXPECT_THAT(lines.seen, ElementsAre(absl::StrCat("O:", std::string(100, 'x')),
                                      absl::StrCat("O:", std::string(100, 'x')),
                                      absl::StrCat("O:", std::string(50, 'x')), "O:next"));
}

TEST(LogStreamDecoder, ALineOfExactlyTheBoundIsNotFollowedByAnEmptyOne) {
  Lines lines;
  LogStreamDecoder decoder(LogStreamDecoder::Framing::kMultiplexed, false, 100, lines.Sink());
  ASSERT_TRUE(decoder.Feed(Frame(1, std::string(100, 'y'))).ok());
  ASSERT_TRUE(decoder.Feed(Frame(1, "\nafter\n")).ok());
  decoder.Finish();
  EXPECT_THAT(lines.seen, ElementsAre(absl::StrCat("O:", std::string(100, 'y')), "O:after"));
}

TEST(LogStreamDecoder, ATtyStreamIsUnframedStdout) {
  Lines lines;
  LogStreamDecoder decoder(LogStreamDecoder::Framing::kRaw, false, 1024, lines.Sink());
  ASSERT_TRUE(decoder.Feed("prompt> ls\r\nfile\r\n").ok());
  decoder.Finish();
  EXPECT_THAT(lines.seen, ElementsAre("O:prompt> ls", "O:file"));
}

TEST(LogStreamDecoder, TimestampsBecomeTheLineTime) {
  Lines lines;
  LogStreamDecoder decoder(LogStreamDecoder::Framing::kMultiplexed, true, 1024, lines.Sink());
  ASSERT_TRUE(decoder
                  .Feed(absl::StrCat(Frame(1, "2026-11-28T01:45:42.492696467Z served /healthz\n"),
                                     Frame(2, "2026-11-28T01:45:43Z err line\n")))
                  .ok());
  decoder.Finish();
  EXPECT_THAT(lines.seen, ElementsAre("O:served /healthz", "E:err line"));
  ASSERT_EQ(lines.times.size(), 2u);
  ASSERT_TRUE(lines.times[0].has_value());
  absl::Time expected;
  std::string error;
  ASSERT_TRUE(
      absl::ParseTime(absl::RFC3339_full, "2026-11-28T01:45:42.492696467Z", &expected, &error));
  EXPECT_EQ(*lines.times[0], expected);
  ASSERT_TRUE(lines.times[1].has_value());
  EXPECT_EQ(absl::ToUnixSeconds(*lines.times[1]) - absl::ToUnixSeconds(*lines.times[0]), 1);
}

TEST(LogStreamDecoder, StopsWhenTheReaderHasEnough) {
  Lines lines;
  LogStreamDecoder decoder(LogStreamDecoder::Framing::kMultiplexed, false, 1024, lines.Sink(2));
  ASSERT_TRUE(decoder.Feed(Frame(1, "one\ntwo\nthree\nfour\n")).ok());
  decoder.Finish();
  EXPECT_TRUE(decoder.stopped());
  EXPECT_THAT(lines.seen, ElementsAre("O:one", "O:two"));
}

TEST(LogStreamDecoder, RefusesAFrameOfAnUnknownStream) {
  Lines lines;
  LogStreamDecoder decoder(LogStreamDecoder::Framing::kMultiplexed, false, 1024, lines.Sink());
  const absl::Status status = decoder.Feed(Frame(7, "x\n"));
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status.message(), HasSubstr("stream 7"));
}

}  // namespace
}  // namespace orchestrator::containers
