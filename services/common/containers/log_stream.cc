#include "services/common/containers/log_stream.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace orchestrator::containers {
namespace {

constexpr size_t kFrameHeaderBytes = 8;
// A time the engine puts first: "2026-11-28T01:45:42.492696467Z " at most
// (with a numeric zone a few bytes more).
constexpr size_t kMaxTimestampBytes = 40;

}  // namespace

LogStreamDecoder::LogStreamDecoder(Framing framing, bool timestamps, size_t max_line_bytes,
                                   std::function<bool(const LogLine&)> on_line)
    : framing_(framing),
      timestamps_(timestamps),
      // Room for a time and some text in a line's first piece.
      max_line_bytes_(std::max<size_t>(max_line_bytes, 2 * kMaxTimestampBytes)),
      on_line_(std::move(on_line)) {}

absl::Status LogStreamDecoder::Feed(absl::string_view bytes) {
  if (framing_ == Framing::kRaw) {
    Append(LogLine::Source::kStdout, bytes);
    return absl::OkStatus();
  }
  while (!bytes.empty() && !stopped_) {
    if (frame_left_ == 0) {
      const size_t take = std::min(kFrameHeaderBytes - header_.size(), bytes.size());
      header_.append(bytes.data(), take);
      bytes.remove_prefix(take);
      if (header_.size() < kFrameHeaderBytes) break;
      const auto byte = [&](size_t i) { return static_cast<unsigned char>(header_[i]); };
      // 0 is stdin, which the engine only echoes with a TTY (unframed).
      if (byte(0) != 1 && byte(0) != 2) {
        return absl::InternalError(absl::StrCat("the log stream has a frame for stream ", byte(0),
                                                " (1 stdout, 2 stderr expected)"));
      }
      frame_source_ = byte(0) == 1 ? LogLine::Source::kStdout : LogLine::Source::kStderr;
      frame_left_ = (size_t{byte(4)} << 24) | (size_t{byte(5)} << 16) | (size_t{byte(6)} << 8) |
                    size_t{byte(7)};
      header_.clear();
      continue;
    }
    const size_t take = std::min(frame_left_, bytes.size());
    Append(frame_source_, bytes.substr(0, take));
    bytes.remove_prefix(take);
    frame_left_ -= take;
  }
  return absl::OkStatus();
}

void LogStreamDecoder::Finish() {
  for (size_t i = 0; i < partial_.size() && !stopped_; ++i) {
    if (!partial_[i].text.empty()) {
      Emit(static_cast<LogLine::Source>(i), partial_[i], /*line_ended=*/true);
    }
  }
}

void LogStreamDecoder::Append(LogLine::Source source, absl::string_view bytes) {
  PartialLine& partial = partial_[static_cast<size_t>(source)];
  while (!bytes.empty() && !stopped_) {
    const size_t newline = bytes.find('\n');
    const size_t room = max_line_bytes_ - partial.text.size();
    if (newline != absl::string_view::npos && newline <= room) {
      partial.text.append(bytes.data(), newline);
      bytes.remove_prefix(newline + 1);
      Emit(source, partial, /*line_ended=*/true);
      continue;
    }
    const size_t take = std::min(room, bytes.size());
    partial.text.append(bytes.data(), take);
    bytes.remove_prefix(take);
    if (partial.text.size() == max_line_bytes_) Emit(source, partial, /*line_ended=*/false);
  }
}

void LogStreamDecoder::Emit(LogLine::Source source, PartialLine& partial, bool line_ended) {
  if (line_ended && partial.continued && partial.text.empty()) {
    // The line's last piece went out whole, just before its newline.
    partial.continued = false;
    partial.time.reset();
    return;
  }
  LogLine line;
  line.source = source;
  absl::string_view text = partial.text;
  if (timestamps_ && !partial.continued) {
    const size_t space = text.substr(0, kMaxTimestampBytes).find(' ');
    absl::Time time;
    std::string error;
    if (space != absl::string_view::npos &&
        absl::ParseTime(absl::RFC3339_full, text.substr(0, space), &time, &error)) {
      partial.time = time;
      text.remove_prefix(space + 1);
    }
  }
  line.time = partial.time;
  if (line_ended && !text.empty() && text.back() == '\r') text.remove_suffix(1);
  line.text = std::string(text);
  partial.text.clear();
  partial.continued = !line_ended;
  if (line_ended) partial.time.reset();
  if (!on_line_(line)) stopped_ = true;
}

}  // namespace orchestrator::containers
