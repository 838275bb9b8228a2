#include "services/engineering/domain/prompts.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_split.h"

namespace orchestrator::engineering {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

v1::TestReport Report(v1::TestOutcome outcome, int passed, int failed) {
  v1::TestReport r;
  r.set_outcome(outcome);
  r.set_command("python3 -m unittest discover -s tests -v");
  r.set_passed_count(passed);
  r.set_failed_count(failed);
  r.set_output_tail("FAIL: test_healthz_answers_ok\nFAILED (failures=1)\n");
  return r;
}

TEST(PromptsTest, ACommitSaysWhatTheAgentDidAndTiesItToItsRunAndTests) {
  const std::string message = CommitMessage("## Add GET /api/version\n\nWith a test.", "eng_1",
                                            Report(v1::TEST_OUTCOME_PASSED, 10, 0), false);
  std::vector<std::string> lines = absl::StrSplit(message, '\n');
  EXPECT_EQ(lines[0], "Add GET /api/version");
  EXPECT_THAT(message, HasSubstr("With a test."));
  EXPECT_THAT(message, HasSubstr("\n\nOrchestrator-Run: eng_1\nTests: 10 passed, 0 failed "
                                 "(python3 -m unittest discover -s tests -v)\n"));
}

TEST(PromptsTest, ASubjectIsOneShortLineAndAFailingAttemptIsMarked) {
  const std::string long_summary(300, 'x');
  EXPECT_LE(CommitSubject(long_summary, "eng_1", false).size(), 72u);
  EXPECT_EQ(CommitSubject("", "eng_1", false), "Engineering run eng_1");
  EXPECT_THAT(CommitSubject("Try again", "eng_1", true), StartsWith("WIP (tests failing): "));
  const std::string huge(10000, 'y');
  EXPECT_LT(CommitMessage(huge, "eng_1", Report(v1::TEST_OUTCOME_PASSED, 1, 0), false).size(),
            5000u);
}

TEST(PromptsTest, TheTurnAfterFailingTestsCarriesTheirOutput) {
  const std::string prompt = AfterTestsFailed(1, 3, Report(v1::TEST_OUTCOME_FAILED, 8, 1));
  EXPECT_THAT(prompt, StartsWith(kTestsFailedHeader));
  EXPECT_THAT(prompt, HasSubstr("attempt 1 of 3"));
  EXPECT_THAT(prompt, HasSubstr("8 passed, 1 failed"));
  EXPECT_THAT(prompt, HasSubstr("FAILED (failures=1)"));
}

TEST(PromptsTest, TheWorkerIsToldWhereTheRepositoryIsAndHowItIsChecked) {
  projects::v1::Project p;
  p.set_name("shop");
  for (const char* a : {"python3", "-m", "unittest", "discover", "-s", "tests"}) {
    p.mutable_run_contract()->add_test_command(a);
  }
  const std::string text = WorkerInstructions(p);
  EXPECT_THAT(text, HasSubstr("./repo"));
  EXPECT_THAT(text, HasSubstr("`python3 -m unittest discover -s tests`"));
  EXPECT_THAT(text, HasSubstr("Do not commit, push"));
}

TEST(PromptsTest, ACommandLineQuotesWhatAShellWouldSplit) {
  EXPECT_EQ(CommandLine({"npm", "test"}), "npm test");
  EXPECT_EQ(CommandLine({"sh", "-c", "echo it's"}), "sh -c 'echo it'\\''s'");
  EXPECT_EQ(CommandLine({"a", ""}), "a ''");
}

}  // namespace
}  // namespace orchestrator::engineering
