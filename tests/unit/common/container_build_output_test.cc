// A build's JSON-lines progress, as Podman and Docker stream it.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/containers/build_output.h"

namespace orchestrator::containers {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// What Podman 4.3 streamed for a successful build (recorded).
constexpr char kPodmanBuild[] =
    R"({"stream":"STEP 1/3: FROM localhost/orchestrator-template-python:bookworm\n"})"
    "\n"
    R"({"stream":"STEP 2/3: RUN echo hello from build\n"})"
    "\n"
    R"({"stream":"hello from build\n"})"
    "\n"
    R"({"stream":"--\u003e 6d1de368107\n"})"
    "\n"
    R"({"stream":"COMMIT localhost/pexp:one\n"})"
    "\n"
    R"({"aux":{"ID":"sha256:abee5a0be7bc22dd69301e579daaef81b0fdbb99035f1e510e31aec30a351ec6"}})"
    "\n"
    R"({"stream":"Successfully built abee5a0be7bc\n"})"
    "\n";

TEST(BuildOutputReader, HandsOverEachLineAndReportsTheImageId) {
  std::vector<std::string> lines;
  BuildOutputReader reader([&](const std::string& line) { lines.push_back(line); });
  const std::string output = kPodmanBuild;
  // In pieces that cut messages (and multi-byte escapes) anywhere.
  for (size_t i = 0; i < output.size(); i += 7) reader.Feed(output.substr(i, 7));
  auto id = reader.Finish();
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "sha256:abee5a0be7bc22dd69301e579daaef81b0fdbb99035f1e510e31aec30a351ec6");
  EXPECT_THAT(lines, ElementsAre("STEP 1/3: FROM localhost/orchestrator-template-python:bookworm",
                                 "STEP 2/3: RUN echo hello from build", "hello from build",
                                 "--> 6d1de368107", "COMMIT localhost/pexp:one",
                                 "Successfully built abee5a0be7bc"));
}

TEST(BuildOutputReader, JoinsOutputThatComesInPiecesOfALine) {
  std::vector<std::string> lines;
  BuildOutputReader reader([&](const std::string& line) { lines.push_back(line); });
  reader.Feed(R"({"stream":"Step 1/2 : FROM base"})"
              "\n"
              R"({"stream":"\n"})"
              "\n"
              R"({"stream":"a\nb"})"
              "\n"
              R"({"stream":"c\n"})"
              "\n"
              R"({"status":"Pulling from library/base"})"
              "\n");
  ASSERT_TRUE(reader.Finish().ok());
  EXPECT_THAT(lines, ElementsAre("Step 1/2 : FROM base", "a", "bc", "Pulling from library/base"));
}

TEST(BuildOutputReader, AFailedBuildCarriesTheErrorAndTheLastLines) {
  std::vector<std::string> lines;
  BuildOutputReader reader([&](const std::string& line) { lines.push_back(line); });
  for (int i = 1; i <= 30; ++i) {
    reader.Feed(absl::StrCat(R"({"stream":"line )", i, R"(\n"})", "\n"));
  }
  reader.Feed(
      R"({"errorDetail":{"message":"building at STEP \"RUN false\": while running runtime: exit status 1\n"},"error":"building at STEP \"RUN false\": exit status 1\n"})"
      "\n");
  auto id = reader.Finish();
  EXPECT_EQ(id.status().code(), absl::StatusCode::kFailedPrecondition);
  const std::string message(id.status().message());
  EXPECT_THAT(message, HasSubstr("while running runtime: exit status 1"));
  EXPECT_THAT(message, HasSubstr("line 30"));
  EXPECT_THAT(message, HasSubstr("line 11\n"));
  EXPECT_THAT(message, Not(HasSubstr("line 10\n")));
  EXPECT_EQ(lines.size(), 30u);
}

TEST(BuildOutputReader, TheTailInTheErrorIsBounded) {
  BuildOutputReader reader([](const std::string&) {});
  for (int i = 0; i < 20; ++i) {
    reader.Feed(absl::StrCat(R"({"stream":")", std::string(1000, 'a' + i), R"(\n"})", "\n"));
  }
  reader.Feed(R"({"error":"failed"})"
              "\n");
  auto id = reader.Finish();
  EXPECT_EQ(id.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_LT(id.status().message().size(), BuildOutputReader::kMaxTailBytes + 200);
  // The newest lines are the ones kept.
  EXPECT_THAT(id.status().message(), HasSubstr(std::string(1000, 'a' + 19)));
}

TEST(BuildOutputReader, AnOverLongMessageIsLeftOutAndSaidSo) {
  std::vector<std::string> lines;
  BuildOutputReader reader([&](const std::string& line) { lines.push_back(line); });
  const std::string huge(BuildOutputReader::kMaxMessageBytes + 10, 'x');
  reader.Feed(absl::StrCat(R"({"stream":")", huge.substr(0, huge.size() / 2)));
  reader.Feed(absl::StrCat(huge.substr(huge.size() / 2), R"("})", "\n"));
  reader.Feed(R"({"stream":"after\n"})"
              "\n");
  ASSERT_TRUE(reader.Finish().ok());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr("was left out"));
  EXPECT_EQ(lines[1], "after");
}

TEST(BuildOutputReader, LongOutputLinesComeInBoundedPieces) {
  std::vector<std::string> lines;
  BuildOutputReader reader([&](const std::string& line) { lines.push_back(line); });
  reader.Feed(absl::StrCat(R"({"stream":")", std::string(BuildOutputReader::kMaxLineBytes + 5, 'z'),
                           R"(\n"})", "\n"));
  ASSERT_TRUE(reader.Finish().ok());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].size(), BuildOutputReader::kMaxLineBytes);
  EXPECT_EQ(lines[1], "zzzzz");
}

TEST(BuildOutputReader, TextThatIsNotJsonIsStillOutput) {
  std::vector<std::string> lines;
  BuildOutputReader reader([&](const std::string& line) { lines.push_back(line); });
  reader.Feed("plain text from a proxy\n");
  auto id = reader.Finish();
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "");
  EXPECT_THAT(lines, ElementsAre("plain text from a proxy"));
}

}  // namespace
}  // namespace orchestrator::containers
