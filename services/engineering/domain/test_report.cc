#include "services/engineering/domain/test_report.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace orchestrator::engineering {
namespace {

bool IsContinuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Drops the first bytes of `s` up to `size()` - `keep` bytes, and then any
// continuation bytes, so that it starts at a character.
void KeepLast(std::string* s, size_t keep) {
  if (s->size() <= keep) return;
  size_t from = s->size() - keep;
  while (from < s->size() && from < s->size() - keep + 3 && IsContinuation((*s)[from])) ++from;
  s->erase(0, from);
}

// The length of the valid UTF-8 character at the start of `s`, or 0.
size_t Utf8CharLength(absl::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (size_t i = 2; i < n; ++i) {
    if (!IsContinuation(s[i])) return 0;
  }
  return n;
}

// `s` as valid UTF-8 that a database text column takes: each invalid byte
// and each NUL becomes U+FFFD.
std::string Sanitized(absl::string_view s) {
  static constexpr char kReplacement[] = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = s[i] == '\0' ? 0 : Utf8CharLength(s.substr(i));
    if (n == 0) {
      out += kReplacement;
      ++i;
    } else {
      out.append(s.data() + i, n);
      i += n;
    }
  }
  return out;
}

// The line without terminal colour codes (ESC [ … final byte).
std::string WithoutAnsi(absl::string_view line) {
  std::string out;
  out.reserve(line.size());
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\x1b' && i + 1 < line.size() && line[i + 1] == '[') {
      size_t j = i + 2;
      while (j < line.size() && !(line[j] >= '@' && line[j] <= '~')) ++j;
      i = j;
      continue;
    }
    out += line[i];
  }
  return out;
}

// "12 passed" as {12, "passed"}.
bool CountAndWord(absl::string_view part, int64_t* count, absl::string_view* word) {
  part = absl::StripAsciiWhitespace(part);
  const size_t space = part.find(' ');
  if (space == absl::string_view::npos) return false;
  if (!absl::SimpleAtoi(part.substr(0, space), count) || *count < 0) return false;
  *word = absl::StripAsciiWhitespace(part.substr(space + 1));
  return !word->empty();
}

// "pass 9" as {"pass", 9}.
bool WordAndCount(absl::string_view part, absl::string_view* word, int64_t* count) {
  const std::vector<absl::string_view> tokens = absl::StrSplit(part, ' ', absl::SkipEmpty());
  if (tokens.size() != 2) return false;
  *word = tokens[0];
  return absl::SimpleAtoi(tokens[1], count) && *count >= 0;
}

// unittest's verdict: "OK", "OK (skipped=1)", "FAILED (failures=1, errors=2)".
bool UnittestVerdict(absl::string_view line, int64_t* failed, int64_t* skipped) {
  absl::string_view rest;
  if (line == "OK" || line == "NO TESTS RAN") {
    rest = "";
  } else if (absl::StartsWith(line, "OK (") || absl::StartsWith(line, "FAILED (") ||
             absl::StartsWith(line, "NO TESTS RAN (")) {
    rest = line.substr(line.find('(') + 1);
    if (!absl::ConsumeSuffix(&rest, ")")) return false;
  } else {
    return false;
  }
  *failed = 0;
  *skipped = 0;
  for (absl::string_view item : absl::StrSplit(rest, ", ", absl::SkipEmpty())) {
    const size_t eq = item.find('=');
    int64_t n = 0;
    if (eq == absl::string_view::npos || !absl::SimpleAtoi(item.substr(eq + 1), &n) || n < 0) {
      return false;
    }
    const absl::string_view key = item.substr(0, eq);
    if (key == "failures" || key == "errors" || key == "unexpected successes") {
      *failed += n;
    } else if (key == "skipped") {
      *skipped += n;
    }
  }
  return true;
}

// pytest's last line: "1 failed, 9 passed, 1 skipped in 0.52s" (between
// "=" rules without -q), or "no tests ran in 0.01s".
bool PytestSummary(absl::string_view line, int64_t* passed, int64_t* failed, int64_t* skipped) {
  while (absl::ConsumePrefix(&line, "=")) {
  }
  while (absl::ConsumeSuffix(&line, "=")) {
  }
  line = absl::StripAsciiWhitespace(line);
  const size_t in = line.rfind(" in ");
  if (in == absl::string_view::npos) return false;
  // " in 0.52s" or " in 75.01s (0:01:15)"
  absl::string_view time = line.substr(in + 4);
  time = time.substr(0, time.find(' '));
  double seconds = 0;
  if (!absl::ConsumeSuffix(&time, "s") || !absl::SimpleAtod(time, &seconds)) return false;
  const absl::string_view counts = line.substr(0, in);
  *passed = *failed = *skipped = 0;
  if (counts == "no tests ran") return true;
  bool any = false;
  for (absl::string_view part : absl::StrSplit(counts, ", ")) {
    int64_t n = 0;
    absl::string_view word;
    if (!CountAndWord(part, &n, &word)) return false;
    if (word == "passed" || word == "xpassed") {
      *passed += n;
    } else if (word == "failed" || word == "error" || word == "errors") {
      *failed += n;
    } else if (word == "skipped" || word == "xfailed") {
      *skipped += n;
    } else if (word != "warning" && word != "warnings" && word != "deselected" && word != "rerun" &&
               word != "reruns") {
      return false;
    }
    any = true;
  }
  return any;
}

int32_t Clamped(int64_t n) {
  return static_cast<int32_t>(std::clamp<int64_t>(n, 0, std::numeric_limits<int32_t>::max()));
}

}  // namespace

std::string ValidText(absl::string_view text) { return Sanitized(text); }

TestReportBuilder::TestReportBuilder(std::string command) : command_(std::move(command)) {}

void TestReportBuilder::AppendTail(std::string_view bytes) {
  tail_.append(bytes);
  // Trimmed now and then rather than on each chunk: keeps appends cheap.
  if (tail_.size() > 4 * kTailBytes) KeepLast(&tail_, kTailBytes);
}

void TestReportBuilder::Feed(std::string_view input) {
  AppendTail(input);
  absl::string_view chunk(input.data(), input.size());
  while (!chunk.empty()) {
    const size_t nl = chunk.find('\n');
    const absl::string_view piece = chunk.substr(0, nl);
    if (!overlong_) {
      if (partial_.size() + piece.size() > kMaxLineBytes) {
        overlong_ = true;
        partial_.clear();
      } else {
        partial_.append(piece.data(), piece.size());
      }
    }
    if (nl == absl::string_view::npos) break;
    if (!overlong_) OnLine(partial_);
    partial_.clear();
    overlong_ = false;
    chunk.remove_prefix(nl + 1);
  }
}

void TestReportBuilder::OnLine(const std::string& raw) {
  const std::string clean = WithoutAnsi(raw);
  const absl::string_view line = absl::StripAsciiWhitespace(clean);
  if (line.empty()) return;
  int64_t n = 0;
  absl::string_view word;

  // unittest: "Ran 10 tests in 0.369s", then a blank line, then its verdict.
  if (absl::StartsWith(line, "Ran ")) {
    absl::string_view rest = line.substr(4);
    const size_t space = rest.find(' ');
    if (space != absl::string_view::npos && absl::SimpleAtoi(rest.substr(0, space), &n) &&
        absl::StartsWith(rest.substr(space + 1), "test")) {
      unittest_ran_ = n;
      return;
    }
  }
  if (unittest_ran_ >= 0) {
    int64_t failed = 0, skipped = 0;
    if (UnittestVerdict(line, &failed, &skipped)) {
      counts_[kUnittest] = {.passed = std::max<int64_t>(0, unittest_ran_ - failed - skipped),
                            .failed = failed,
                            .skipped = skipped};
      last_ = kUnittest;
      unittest_ran_ = -1;
      return;
    }
  }

  // node --test: TAP comments "# pass 9", or the spec reporter's "ℹ pass 9".
  absl::string_view node = line;
  if ((absl::ConsumePrefix(&node, "# ") || absl::ConsumePrefix(&node, "\xE2\x84\xB9 ")) &&
      WordAndCount(node, &word, &n)) {
    if (word == "tests") {
      counts_[kNode] = {};
    } else if (word == "pass") {
      counts_[kNode].passed = n;
    } else if (word == "fail" || word == "cancelled") {
      counts_[kNode].failed += n;
    } else if (word == "skipped") {
      counts_[kNode].skipped = n;
    } else {
      return;
    }
    last_ = kNode;
    return;
  }

  // go test -v: one line per test (subtests included).
  if (absl::StartsWith(line, "--- PASS: ")) {
    ++counts_[kGo].passed;
    last_ = kGo;
    return;
  }
  if (absl::StartsWith(line, "--- FAIL: ")) {
    ++counts_[kGo].failed;
    last_ = kGo;
    return;
  }
  if (absl::StartsWith(line, "--- SKIP: ")) {
    ++counts_[kGo].skipped;
    last_ = kGo;
    return;
  }

  // jest: "Tests:       1 failed, 1 skipped, 3 passed, 5 total".
  if (absl::string_view rest = line; absl::ConsumePrefix(&rest, "Tests:")) {
    Counts c;
    bool total = false;
    for (absl::string_view part : absl::StrSplit(rest, ',')) {
      if (!CountAndWord(part, &n, &word)) {
        total = false;
        break;
      }
      if (word == "passed") c.passed += n;
      if (word == "failed") c.failed += n;
      if (word == "skipped" || word == "todo") c.skipped += n;
      if (word == "total") total = true;
    }
    if (total) {
      counts_[kJest] = c;
      last_ = kJest;
      return;
    }
  }

  // cargo: "test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured;
  // 0 filtered out; finished in 0.00s", once per test binary.
  if (absl::string_view rest = line; absl::ConsumePrefix(&rest, "test result: ")) {
    const size_t dot = rest.find(". ");
    if (dot != absl::string_view::npos) {
      Counts c;
      for (absl::string_view part : absl::StrSplit(rest.substr(dot + 2), ';')) {
        if (!CountAndWord(part, &n, &word)) continue;
        if (word == "passed") c.passed += n;
        if (word == "failed") c.failed += n;
        if (word == "ignored") c.skipped += n;
      }
      counts_[kCargo].passed += c.passed;
      counts_[kCargo].failed += c.failed;
      counts_[kCargo].skipped += c.skipped;
      last_ = kCargo;
      return;
    }
  }

  int64_t passed = 0, failed = 0, skipped = 0;
  if (PytestSummary(line, &passed, &failed, &skipped)) {
    counts_[kPytest] = {.passed = passed, .failed = failed, .skipped = skipped};
    last_ = kPytest;
  }
}

v1::TestReport TestReportBuilder::Finish(int exit_code, bool timed_out, absl::Duration duration) {
  if (!partial_.empty() && !overlong_) OnLine(partial_);
  partial_.clear();

  v1::TestReport report;
  report.set_command(command_);
  std::string note;
  if (timed_out) {
    report.set_outcome(v1::TEST_OUTCOME_FAILED);
    note = absl::StrCat("[orchestrator: the tests timed out after ", absl::FormatDuration(duration),
                        " and were killed]");
  } else if (exit_code == 0) {
    report.set_outcome(v1::TEST_OUTCOME_PASSED);
  } else if (exit_code == 126 || exit_code == 127) {
    report.set_outcome(v1::TEST_OUTCOME_NOT_RUN);
    note = absl::StrCat("[orchestrator: the test command could not be run (exit ", exit_code, ": ",
                        exit_code == 127 ? "not found" : "not executable", ")]");
  } else {
    report.set_outcome(v1::TEST_OUTCOME_FAILED);
  }

  const Counts& counts = counts_[last_];
  report.set_passed_count(Clamped(counts.passed));
  report.set_failed_count(Clamped(counts.failed));
  report.set_skipped_count(Clamped(counts.skipped));
  *report.mutable_duration() = google::protobuf::util::TimeUtil::MicrosecondsToDuration(
      absl::ToInt64Microseconds(std::max(duration, absl::ZeroDuration())));

  std::string tail = Sanitized(tail_);
  if (!note.empty()) {
    KeepLast(&tail, kTailBytes - note.size() - 1);
    if (!tail.empty() && tail.back() != '\n') tail += '\n';
    tail += note;
  }
  KeepLast(&tail, kTailBytes);
  report.set_output_tail(std::move(tail));
  return report;
}

}  // namespace orchestrator::engineering
