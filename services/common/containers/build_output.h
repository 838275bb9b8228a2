#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace orchestrator::containers {

// Reads a build's progress as the engine streams it from POST /build: one
// JSON object a line, {"stream": text} (the build's output, in pieces that
// need not end lines), {"status": text}, {"aux": {"ID": image id}} and, when
// it fails, {"error": message, "errorDetail": {"message": message}}. Hands
// each output line to `on_output` and keeps the last ones for the error.
class BuildOutputReader final {
 public:
  // Bounds on what is held: a progress message longer than this is left
  // out (a line says so), and an output line longer than this is handed
  // over in pieces.
  static constexpr size_t kMaxMessageBytes = 1 << 20;
  static constexpr size_t kMaxLineBytes = 16 << 10;
  // What a failed build's status carries of the output.
  static constexpr size_t kTailLines = 20;
  static constexpr size_t kMaxTailBytes = 4 << 10;

  explicit BuildOutputReader(std::function<void(const std::string& line)> on_output);

  // The next bytes of the answer, in pieces of any size.
  void Feed(absl::string_view bytes);
  // At the end of the answer: the image id the engine reported ("" when it
  // reported none), or FAILED_PRECONDITION with the engine's error and the
  // output's last lines.
  absl::StatusOr<std::string> Finish();

 private:
  void Message(absl::string_view json);
  void Output(absl::string_view text);
  void Line(std::string line);

  const std::function<void(const std::string&)> on_output_;
  std::string message_;    // a JSON line being read
  bool skipping_ = false;  // the rest of an over-long message
  std::string line_;       // output text not yet ended by a newline
  std::deque<std::string> tail_;
  std::string error_;
  std::string image_id_;
};

}  // namespace orchestrator::containers
