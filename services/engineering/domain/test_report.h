#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "orchestrator/engineering/v1/engineering.pb.h"

namespace orchestrator::engineering {

// Reads a test command's output (standard error merged into standard
// output) as it comes and makes the TestReport of the run: the outcome from
// the exit, the counts from the last summary the output printed, and the
// end of the output.
//
// Summaries it knows (the last one printed wins; cargo's, one per test
// binary, and go's per-test lines add up):
//   python unittest  "Ran N tests" then "OK (skipped=S)" or
//                    "FAILED (failures=F, errors=E, skipped=S)":
//                    passed = N - F - E - S (unexpected successes fail)
//   pytest           "1 failed, 9 passed, 1 skipped, 2 errors in 0.5s"
//   node --test      "# pass N" / "# fail N" / "# skipped N" (TAP) or
//                    "ℹ pass N" … (spec); cancelled tests count as failed
//   go test -v       "--- PASS:" / "--- FAIL:" / "--- SKIP:" lines
//   jest             "Tests: 1 failed, 1 skipped, 3 passed, 5 total"
//   cargo test       "test result: … N passed; M failed; K ignored; …"
// Output that prints none leaves the counts at zero. Not thread-safe.
class TestReportBuilder {
 public:
  // How much of the end of the output the report keeps.
  static constexpr size_t kTailBytes = 8 * 1024;
  // A line longer than this is not a summary: it is skipped unread.
  static constexpr size_t kMaxLineBytes = 4 * 1024;

  explicit TestReportBuilder(std::string command);

  // More output, cut anywhere (lines and UTF-8 characters may span calls).
  void Feed(std::string_view chunk);

  // The report once the command has ended: PASSED on exit 0, NOT_RUN on
  // 126/127 (the shell could not run it), FAILED otherwise or when it timed
  // out (said at the end of output_tail, as is why it did not run).
  v1::TestReport Finish(int exit_code, bool timed_out, absl::Duration duration);

 private:
  enum Format { kNone, kUnittest, kPytest, kNode, kGo, kJest, kCargo, kFormats };
  struct Counts {
    int64_t passed = 0;
    int64_t failed = 0;
    int64_t skipped = 0;
  };

  void OnLine(const std::string& line);
  void AppendTail(std::string_view bytes);

  std::string command_;
  std::string tail_;       // the last bytes of output, at least kTailBytes once there are as many
  std::string partial_;    // the current line so far
  bool overlong_ = false;  // the current line passed kMaxLineBytes

  Format last_ = kNone;  // whose summary came last
  // unittest: "Ran N tests" seen, waiting for its verdict line.
  int64_t unittest_ran_ = -1;
  std::array<Counts, kFormats> counts_{};  // each format's latest summary
};

// `text` as valid UTF-8 a database text column and a proto string take:
// each invalid byte and each NUL becomes U+FFFD (test output, file names).
std::string ValidText(absl::string_view text);

}  // namespace orchestrator::engineering
