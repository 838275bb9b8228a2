#include "services/engineering/domain/test_report.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace orchestrator::engineering {
namespace {

// The goldens are real output (standard error merged into standard
// output): the three templates (python-http, static-site, node-http)
// rendered with their defaults, their run contract's test command run as
// generated and with one test broken; node-http's once more with
// --test-reporter=spec; and a small cargo crate (unit, integration and doc
// tests; then a unit test broken).
std::string Golden(const std::string& name) {
  std::ifstream in(std::string(TESTDATA_DIR) + "/" + name, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Feeds `output` in pieces of `chunk` bytes.
v1::TestReport Report(const std::string& output, int exit_code, size_t chunk = 4096,
                      bool timed_out = false) {
  TestReportBuilder builder("the tests");
  for (size_t i = 0; i < output.size(); i += chunk) builder.Feed(output.substr(i, chunk));
  return builder.Finish(exit_code, timed_out, absl::Milliseconds(1500));
}

struct GoldenCase {
  std::string file;
  int exit_code;
  v1::TestOutcome outcome;
  int passed, failed, skipped;
};

class GoldenTest : public testing::TestWithParam<GoldenCase> {};

TEST_P(GoldenTest, CountsWhatTheTemplatesTestsPrint) {
  const GoldenCase& c = GetParam();
  const std::string output = Golden(c.file);
  ASSERT_FALSE(output.empty()) << c.file;
  // Cut anywhere, even inside a line or a character ("ℹ", "✔"), the
  // report is the same.
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{64}, output.size()}) {
    const v1::TestReport r = Report(output, c.exit_code, chunk);
    EXPECT_EQ(r.outcome(), c.outcome) << c.file << " in chunks of " << chunk;
    EXPECT_EQ(r.passed_count(), c.passed) << c.file << " in chunks of " << chunk;
    EXPECT_EQ(r.failed_count(), c.failed) << c.file << " in chunks of " << chunk;
    EXPECT_EQ(r.skipped_count(), c.skipped) << c.file << " in chunks of " << chunk;
    EXPECT_EQ(r.output_tail(), output) << c.file;  // each is under 8 KiB
    EXPECT_EQ(r.command(), "the tests");
    EXPECT_EQ(r.duration().seconds(), 1);
    EXPECT_EQ(r.duration().nanos(), 500000000);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Templates, GoldenTest,
    testing::Values(
        // python3 -m unittest discover -s tests -v (one test skips: metrics are on).
        GoldenCase{"python-http.pass.txt", 0, v1::TEST_OUTCOME_PASSED, 9, 0, 1},
        GoldenCase{"python-http.fail.txt", 1, v1::TEST_OUTCOME_FAILED, 8, 1, 1},
        GoldenCase{"static-site.pass.txt", 0, v1::TEST_OUTCOME_PASSED, 5, 0, 0},
        GoldenCase{"static-site.fail.txt", 1, v1::TEST_OUTCOME_FAILED, 4, 1, 0},
        // node --test: TAP when not on a terminal, and the spec reporter.
        GoldenCase{"node-http.tap.pass.txt", 0, v1::TEST_OUTCOME_PASSED, 9, 0, 1},
        GoldenCase{"node-http.tap.fail.txt", 1, v1::TEST_OUTCOME_FAILED, 8, 1, 1},
        GoldenCase{"node-http.spec.pass.txt", 0, v1::TEST_OUTCOME_PASSED, 9, 0, 1},
        GoldenCase{"node-http.spec.fail.txt", 1, v1::TEST_OUTCOME_FAILED, 8, 1, 1},
        // cargo test: one summary per test binary, added up.
        GoldenCase{"cargo.pass.txt", 0, v1::TEST_OUTCOME_PASSED, 4, 0, 1},
        GoldenCase{"cargo.fail.txt", 101, v1::TEST_OUTCOME_FAILED, 1, 1, 1}),
    [](const testing::TestParamInfo<GoldenCase>& info) {
      std::string name = info.param.file.substr(0, info.param.file.size() - 4);
      for (char& c : name) {
        if (c == '.' || c == '-') c = '_';
      }
      return name;
    });

TEST(TestReportTest, UnittestFailuresErrorsAndSkipsAreNotPassed) {
  const auto r = Report(
      "Ran 10 tests in 0.1s\n\nFAILED (failures=1, errors=2, skipped=1, expected failures=1)\n", 1);
  EXPECT_EQ(r.passed_count(), 6);
  EXPECT_EQ(r.failed_count(), 3);
  EXPECT_EQ(r.skipped_count(), 1);
  const auto ok = Report("Ran 1 test in 0.000s\n\nOK\n", 0);
  EXPECT_EQ(ok.passed_count(), 1);
  EXPECT_EQ(ok.outcome(), v1::TEST_OUTCOME_PASSED);
}

TEST(TestReportTest, PytestSummaries) {
  auto r =
      Report("F.s\n==== 1 failed, 9 passed, 1 skipped, 2 errors, 3 warnings in 0.52s ====\n", 1);
  EXPECT_EQ(r.passed_count(), 9);
  EXPECT_EQ(r.failed_count(), 3);
  EXPECT_EQ(r.skipped_count(), 1);
  r = Report("...\n3 passed in 75.01s (0:01:15)\n", 0);  // -q
  EXPECT_EQ(r.passed_count(), 3);
  EXPECT_EQ(r.failed_count(), 0);
  // A log line that merely ends in "in 2s" is not a summary.
  r = Report("3 passed in 1s\nrequest served in 2s\n", 0);
  EXPECT_EQ(r.passed_count(), 3);
}

TEST(TestReportTest, GoTestVerboseLines) {
  const auto r = Report(
      "=== RUN   TestA\n--- PASS: TestA (0.00s)\n=== RUN   TestB\n    --- PASS: TestB/sub (0.00s)\n"
      "--- FAIL: TestB (0.01s)\n--- SKIP: TestC (0.00s)\nFAIL\nFAIL\texample.com/m\t0.02s\n",
      1);
  EXPECT_EQ(r.passed_count(), 2);
  EXPECT_EQ(r.failed_count(), 1);
  EXPECT_EQ(r.skipped_count(), 1);
}

TEST(TestReportTest, JestSummary) {
  const auto r = Report(
      "Test Suites: 1 failed, 2 passed, 3 total\n"
      "Tests:       1 failed, 1 skipped, 1 todo, 3 passed, 6 total\nSnapshots:   0 total\n",
      1);
  EXPECT_EQ(r.passed_count(), 3);
  EXPECT_EQ(r.failed_count(), 1);
  EXPECT_EQ(r.skipped_count(), 2);
  // Coloured, as with --colors.
  const auto coloured =
      Report("\x1b[1mTests:\x1b[22m       \x1b[1m\x1b[32m4 passed\x1b[39m\x1b[22m, 4 total\n", 0);
  EXPECT_EQ(coloured.passed_count(), 4);
}

TEST(TestReportTest, TheLastSummaryWins) {
  // The command ran the tests twice (a retry, or two suites in a row).
  auto r = Report("Ran 3 tests in 0s\n\nFAILED (failures=1)\nRan 4 tests in 0s\n\nOK\n", 0);
  EXPECT_EQ(r.passed_count(), 4);
  EXPECT_EQ(r.failed_count(), 0);
  r = Report("Ran 3 tests in 0s\n\nOK\n# tests 2\n# pass 1\n# fail 1\n# skipped 0\n", 1);
  EXPECT_EQ(r.passed_count(), 1);
  EXPECT_EQ(r.failed_count(), 1);
}

TEST(TestReportTest, OutputWithoutASummaryHasNoCounts) {
  const auto r = Report("Traceback (most recent call last):\nSyntaxError: invalid syntax\n", 1);
  EXPECT_EQ(r.outcome(), v1::TEST_OUTCOME_FAILED);
  EXPECT_EQ(r.passed_count() + r.failed_count() + r.skipped_count(), 0);
}

TEST(TestReportTest, ATimeoutFailsAndSaysSo) {
  const auto r = Report("Ran 3 tests in 0s\n\nOK\n", 0, 4096, /*timed_out=*/true);
  EXPECT_EQ(r.outcome(), v1::TEST_OUTCOME_FAILED);
  EXPECT_EQ(r.output_tail(),
            "Ran 3 tests in 0s\n\nOK\n[orchestrator: the tests timed out after 1.5s and were "
            "killed]");
  // Killed by the deadline: the signal's exit status, still FAILED.
  EXPECT_EQ(Report("", 137, 4096, true).outcome(), v1::TEST_OUTCOME_FAILED);
}

TEST(TestReportTest, ACommandThatCannotRunIsNotRun) {
  const auto missing = Report("sh: 1: pytest: not found\n", 127);
  EXPECT_EQ(missing.outcome(), v1::TEST_OUTCOME_NOT_RUN);
  EXPECT_EQ(missing.output_tail(),
            "sh: 1: pytest: not found\n[orchestrator: the test command could not be run (exit "
            "127: not found)]");
  EXPECT_EQ(Report("", 126).outcome(), v1::TEST_OUTCOME_NOT_RUN);
  EXPECT_EQ(Report("", 2).outcome(), v1::TEST_OUTCOME_FAILED);
  EXPECT_EQ(Report("", 0).outcome(), v1::TEST_OUTCOME_PASSED);
}

bool ValidUtf8Start(const std::string& s) {
  return s.empty() || (static_cast<unsigned char>(s[0]) & 0xC0) != 0x80;
}

TEST(TestReportTest, KeepsTheLast8KiBCutBetweenCharacters) {
  std::string output = "x";
  for (int i = 0; i < 10000; ++i) output += "\xC3\xA9";  // é, misaligned by the x
  output += "\nRan 2 tests in 0s\n\nOK\n";
  for (size_t chunk : {size_t{3}, size_t{1000}, output.size()}) {
    const auto r = Report(output, 0, chunk);
    EXPECT_LE(r.output_tail().size(), TestReportBuilder::kTailBytes);
    EXPECT_GE(r.output_tail().size(), TestReportBuilder::kTailBytes - 3);
    EXPECT_TRUE(ValidUtf8Start(r.output_tail()));
    EXPECT_EQ(r.output_tail().substr(0, 2), "\xC3\xA9");
    EXPECT_TRUE(r.output_tail().ends_with("\nRan 2 tests in 0s\n\nOK\n"));
    EXPECT_EQ(r.passed_count(), 2);
  }
  // With the timeout's note the whole still fits.
  const auto timed_out = Report(output, 0, 4096, true);
  EXPECT_LE(timed_out.output_tail().size(), TestReportBuilder::kTailBytes);
  EXPECT_TRUE(ValidUtf8Start(timed_out.output_tail()));
  EXPECT_TRUE(timed_out.output_tail().ends_with("and were killed]"));
}

TEST(TestReportTest, InvalidUtf8AndNulBecomeReplacementCharacters) {
  const auto r = Report(std::string("a\xFF"
                                    "b\0c\xE2\x82",
                                    7),
                        1);
  EXPECT_EQ(r.output_tail(),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD"
            "c\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(TestReportTest, AnOverlongLineIsSkippedNotBuffered) {
  TestReportBuilder builder("t");
  const std::string noise(1 << 20, 'y');
  for (int i = 0; i < 4; ++i) builder.Feed(noise);      // no newline in 4 MiB
  builder.Feed(" Ran 99 tests in 0s\n");                // the end of that long line: not a summary
  builder.Feed("Ran 2 tests in 0s\n\nOK (skipped=1)");  // the last line has no newline
  const auto r = builder.Finish(0, false, absl::Seconds(1));
  EXPECT_EQ(r.passed_count(), 1);
  EXPECT_EQ(r.skipped_count(), 1);
  EXPECT_LE(r.output_tail().size(), TestReportBuilder::kTailBytes);
}

}  // namespace
}  // namespace orchestrator::engineering
