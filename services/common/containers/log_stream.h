#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "services/common/containers/container_engine.h"

namespace orchestrator::containers {

// Splits a container's log stream, as the engine sends it, into lines.
// Without a TTY the stream is multiplexed: frames of an 8-byte header (the
// source: 1 stdout, 2 stderr; three zero bytes; the length, big-endian 32
// bits) and that many bytes. With a TTY it is the raw output (as stdout).
// Each source's lines are assembled apart; a line longer than
// `max_line_bytes` is handed over in pieces of that size, so nothing it
// holds grows past that. With `timestamps`, each line's leading RFC 3339
// time (what the engine adds) is taken off into LogLine::time.
class LogStreamDecoder final {
 public:
  enum class Framing { kMultiplexed, kRaw };

  LogStreamDecoder(Framing framing, bool timestamps, size_t max_line_bytes,
                   std::function<bool(const LogLine&)> on_line);

  // The next bytes of the stream, in pieces of any size; once `on_line` has
  // returned false the rest is left unread (stopped()). INTERNAL for a
  // frame header that is not the engine's.
  absl::Status Feed(absl::string_view bytes);
  // At the end of the stream: hands over what is left of unfinished lines.
  void Finish();

  bool stopped() const { return stopped_; }

 private:
  struct PartialLine {
    std::string text;
    // Set once the line's first piece went out: the rest has no time of
    // its own.
    bool continued = false;
    std::optional<absl::Time> time;
  };

  void Append(LogLine::Source source, absl::string_view bytes);
  // Hands `partial`'s text over as one line (or piece of one).
  void Emit(LogLine::Source source, PartialLine& partial, bool line_ended);

  const Framing framing_;
  const bool timestamps_;
  const size_t max_line_bytes_;
  const std::function<bool(const LogLine&)> on_line_;
  std::array<PartialLine, 2> partial_;  // by LogLine::Source
  std::string header_;                  // a frame header being read (< 8 bytes)
  LogLine::Source frame_source_ = LogLine::Source::kStdout;
  size_t frame_left_ = 0;  // bytes of the current frame still to come
  bool stopped_ = false;
};

}  // namespace orchestrator::containers
