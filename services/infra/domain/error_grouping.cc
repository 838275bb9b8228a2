#include "services/infra/domain/error_grouping.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <cctype>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "re2/re2.h"
#include "services/common/validation/request_bounds.h"

namespace orchestrator::infra {
namespace {

using google::protobuf::util::TimeUtil;

// Lines kept before an error, for its detail.
constexpr size_t kContextLines = 3;
// One line's share of a detail.
constexpr size_t kMaxDetailLineBytes = 2 << 10;
// A normalised message, at most.
constexpr size_t kMaxMessageBytes = 1 << 10;
constexpr absl::string_view kTraceback = "Traceback (most recent call last):";

bool IsWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool IsHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }
bool IsDigit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }
bool IsLetter(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }

// How many of `text`'s first characters are hex digits.
size_t HexRun(absl::string_view text) {
  size_t n = 0;
  while (n < text.size() && IsHex(text[n])) ++n;
  return n;
}

// The length of a UUID at the start of `text` (8-4-4-4-12 hex digits), 0
// when there is none.
size_t UuidAt(absl::string_view text) {
  static constexpr size_t kGroups[] = {8, 4, 4, 4, 12};
  size_t at = 0;
  for (size_t g = 0; g < 5; ++g) {
    if (g > 0) {
      if (at >= text.size() || text[at] != '-') return 0;
      ++at;
    }
    if (HexRun(text.substr(at)) < kGroups[g]) return 0;
    at += kGroups[g];
  }
  return at;
}

// The length of a run of 1 to 3 digits at the start of `text`.
size_t OctetAt(absl::string_view text) {
  size_t n = 0;
  while (n < text.size() && n < 4 && IsDigit(text[n])) ++n;
  return n >= 1 && n <= 3 ? n : 0;
}

// The length of an IPv4 address (with ":port") at the start of `text`, 0
// when there is none.
size_t Ipv4At(absl::string_view text) {
  size_t at = 0;
  for (int octet = 0; octet < 4; ++octet) {
    if (octet > 0) {
      if (at >= text.size() || text[at] != '.') return 0;
      ++at;
    }
    const size_t n = OctetAt(text.substr(at));
    if (n == 0) return 0;
    at += n;
  }
  if (at + 1 < text.size() && text[at] == ':' && IsDigit(text[at + 1])) {
    ++at;
    while (at < text.size() && IsDigit(text[at])) ++at;
  }
  return at;
}

// The length of a quoted value at the start of `text` (which starts with
// its quote): up to the same quote not followed by a word character, on
// one line, 0 when there is none (an apostrophe).
size_t QuotedAt(absl::string_view text) {
  const char quote = text[0];
  for (size_t i = 1; i < text.size() && i < 512; ++i) {
    if (text[i] == '\n') return 0;
    if (text[i] == quote && (i + 1 == text.size() || !IsWordChar(text[i + 1]))) return i + 1;
  }
  return 0;
}

// A time stamp a log line starts with: "2024-05-01 12:00:00,123",
// "2024-05-01T12:00:00.123456Z", "[2024-05-01 12:00:00]".
const RE2& LeadingTime() {
  static const auto* re = new RE2(
      R"(^\[?\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?\]?\s*)");
  return *re;
}

// A log level that marks an error, as a word or a logfmt / JSON field.
const RE2& ErrorLevel() {
  static const auto* re = new RE2(
      R"((?:^|[^A-Za-z])(?:ERROR|CRITICAL|FATAL|PANIC|SEVERE|EMERGENCY|ALERT)(?:[^A-Za-z]|$))"
      R"(|(?i:\blevel"?\s*[=:]\s*"?(?:error|err|critical|crit|fatal|panic|emerg|alert)\b))");
  return *re;
}

// A line that starts with an exception or a panic.
const RE2& ExceptionLine() {
  static const auto* re =
      new RE2(R"(^(?:(?:[A-Za-z_$][\w$]*\.)*[A-Za-z_$]*(?:Error|Exception)(?::\s|:?$))"
              R"(|panic: |Exception in thread ))");
  return *re;
}

bool IsErrorLine(absl::string_view text) {
  const re2::StringPiece piece(text.data(), text.size());
  return RE2::PartialMatch(piece, ExceptionLine()) || RE2::PartialMatch(piece, ErrorLevel());
}

bool IsIndented(absl::string_view text) {
  return !text.empty() && (text[0] == ' ' || text[0] == '\t');
}

bool IsBlank(absl::string_view text) { return absl::StripAsciiWhitespace(text).empty(); }

bool IsChainMarker(absl::string_view text) {
  return text == "During handling of the above exception, another exception occurred:" ||
         text == "The above exception was the direct cause of the following exception:";
}

std::string Clip(absl::string_view text, size_t max_bytes) {
  return text.size() <= max_bytes ? std::string(text) : Truncated(text, max_bytes - 3);
}

// FNV-1a: the same on every machine and in every run, unlike absl::Hash.
uint64_t StableHash(absl::string_view text) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

google::protobuf::Timestamp TimestampOf(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

}  // namespace

std::string NormaliseErrorMessage(absl::string_view message) {
  absl::string_view text = absl::StripAsciiWhitespace(message);
  re2::StringPiece unstamped(text.data(), text.size());
  RE2::Consume(&unstamped, LeadingTime());
  text = absl::string_view(unstamped.data(), unstamped.size());
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const bool at_word_start = i == 0 || !IsWordChar(text[i - 1]);
    const absl::string_view rest = text.substr(i);
    if (at_word_start && (rest[0] == '\'' || rest[0] == '"')) {
      if (size_t n = QuotedAt(rest); n > 0) {
        absl::StrAppend(&out, absl::string_view(&rest[0], 1), "<str>",
                        absl::string_view(&rest[0], 1));
        i += n;
        continue;
      }
    }
    if (!at_word_start || !IsWordChar(rest[0])) {
      out.push_back(rest[0]);
      ++i;
      continue;
    }
    // A word: what it is decides what stands for it.
    size_t word = 0;
    while (word < rest.size() && IsWordChar(rest[word])) ++word;
    const auto ends_here = [&](size_t n) { return n == rest.size() || !IsWordChar(rest[n]); };
    if (size_t n = UuidAt(rest); n > 0 && ends_here(n)) {
      out += "<uuid>";
      i += n;
    } else if (size_t n = Ipv4At(rest); n > 0 && ends_here(n)) {
      out += "<ip>";
      i += n;
    } else if (rest.size() > 2 && rest[0] == '0' && (rest[1] == 'x' || rest[1] == 'X') &&
               HexRun(rest.substr(2)) + 2 == word && word > 2) {
      out += "<hex>";
      i += word;
    } else if (std::all_of(rest.begin(), rest.begin() + word, IsDigit)) {
      size_t n = word;
      // A decimal fraction belongs to the number.
      if (n + 1 < rest.size() && rest[n] == '.' && IsDigit(rest[n + 1])) {
        ++n;
        while (n < rest.size() && IsDigit(rest[n])) ++n;
      }
      out += "<n>";
      i += n;
    } else if (word >= 8 && HexRun(rest) == word &&
               std::any_of(rest.begin(), rest.begin() + word, IsDigit)) {
      out += "<hex>";
      i += word;
    } else if (size_t digits =
                   std::find_if_not(rest.begin(), rest.begin() + word, IsDigit) - rest.begin();
               digits > 0 && std::all_of(rest.begin() + digits, rest.begin() + word, IsLetter)) {
      // A quantity and its unit: "1500ms", "3rd".
      absl::StrAppend(&out, "<n>", rest.substr(digits, word - digits));
      i += word;
    } else {
      out.append(rest.data(), word);
      i += word;
    }
  }
  return Clip(out, kMaxMessageBytes);
}

void ErrorLogScanner::Add(absl::string_view text, absl::Time time) {
  switch (state_) {
    case State::kIdle:
      break;
    case State::kLine:
      if (absl::StartsWith(text, kTraceback)) {
        // The error line was the traceback's announcement (logging's
        // exception()): the traceback's exception is the message.
        state_ = State::kTraceback;
        Append(text, time);
        return;
      }
      if (IsIndented(text) || absl::StartsWith(text, "Caused by: ")) {
        Append(text, time);
        return;
      }
      Emit();
      break;
    case State::kTraceback:
      Append(text, time);
      if (!IsIndented(text) && !IsBlank(text)) {
        message_ = std::string(text);
        state_ = State::kAfterException;
      }
      return;
    case State::kAfterException:
    case State::kChained:
      if (IsBlank(text)) {
        ++held_blanks_;
        return;
      }
      if (IsChainMarker(text) ||
          (state_ == State::kChained && absl::StartsWith(text, kTraceback))) {
        Append(text, time);
        state_ = IsChainMarker(text) ? State::kChained : State::kTraceback;
        return;
      }
      Emit();
      break;
  }
  if (absl::StartsWith(text, kTraceback)) {
    Start(State::kTraceback, text, time);
  } else if (IsErrorLine(text)) {
    Start(State::kLine, text, time);
    message_ = std::string(text);
  } else {
    before_.push_back(Clip(text, kMaxDetailLineBytes));
    if (before_.size() > kContextLines) before_.pop_front();
  }
}

void ErrorLogScanner::Finish() {
  if (state_ != State::kIdle) Emit();
}

void ErrorLogScanner::Start(State state, absl::string_view text, absl::Time time) {
  state_ = state;
  lines_.clear();
  line_bytes_ = 0;
  cut_ = false;
  held_blanks_ = 0;
  message_.clear();
  for (auto& line : before_) {
    line_bytes_ += line.size() + 1;
    lines_.push_back(std::move(line));
  }
  before_.clear();
  Append(text, time);
}

void ErrorLogScanner::Append(absl::string_view text, absl::Time time) {
  for (; held_blanks_ > 0; --held_blanks_) {
    lines_.emplace_back();
    line_bytes_ += 1;
  }
  lines_.push_back(Clip(text, kMaxDetailLineBytes));
  line_bytes_ += lines_.back().size() + 1;
  // The end of a long traceback tells the most: its first lines go.
  while (line_bytes_ > kMaxErrorDetailBytes - 8 && lines_.size() > 1) {
    line_bytes_ -= lines_.front().size() + 1;
    lines_.pop_front();
    cut_ = true;
  }
  time_ = time;
}

void ErrorLogScanner::Emit() {
  if (lines_.empty()) {
    state_ = State::kIdle;
    return;
  }
  LoggedError error;
  // A traceback cut short (the log ended inside it) has its last line.
  error.message = message_.empty() ? lines_.back() : message_;
  error.detail =
      Clip(absl::StrCat(cut_ ? "…\n" : "", absl::StrJoin(lines_, "\n")), kMaxErrorDetailBytes);
  error.time = time_;
  state_ = State::kIdle;
  lines_.clear();
  line_bytes_ = 0;
  held_blanks_ = 0;
  message_.clear();
  on_error_(std::move(error));
}

void ErrorGroups::Add(ErrorSighting sighting) {
  std::string message = NormaliseErrorMessage(sighting.message);
  std::string key = absl::StrCat(static_cast<int>(sighting.kind), "\n", message);
  auto [it, added] = groups_.try_emplace(std::move(key));
  Group& group = it->second;
  if (added) {
    group.kind = sighting.kind;
    group.message = std::move(message);
    group.first_time = sighting.first_time;
  }
  group.count += sighting.count;
  group.first_time = std::min(group.first_time, sighting.first_time);
  if (added || sighting.last_time >= group.latest.last_time) group.latest = std::move(sighting);
}

std::vector<v1::ErrorRecord> ErrorGroups::Records() const {
  std::vector<v1::ErrorRecord> records;
  records.reserve(groups_.size());
  for (const auto& [key, group] : groups_) {
    v1::ErrorRecord r;
    r.set_id(absl::StrFormat("err-%016x", StableHash(absl::StrCat(project_id_, "\n", key))));
    r.set_project_id(project_id_);
    r.set_service(service_);
    r.set_release_id(group.latest.release_id);
    r.set_kind(group.kind);
    r.set_message(group.message);
    r.set_detail(Clip(group.latest.detail, kMaxErrorDetailBytes));
    r.set_occurrence_count(group.count);
    *r.mutable_first_seen_time() = TimestampOf(group.first_time);
    *r.mutable_last_seen_time() = TimestampOf(group.latest.last_time);
    records.push_back(std::move(r));
  }
  std::sort(records.begin(), records.end(), [](const auto& a, const auto& b) {
    const int64_t a_last = TimeUtil::TimestampToMicroseconds(a.last_seen_time());
    const int64_t b_last = TimeUtil::TimestampToMicroseconds(b.last_seen_time());
    return a_last != b_last ? a_last > b_last : a.id() < b.id();
  });
  return records;
}

}  // namespace orchestrator::infra
