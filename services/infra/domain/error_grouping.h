#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "orchestrator/infra/v1/infra.pb.h"

namespace orchestrator::infra {

// What ErrorRecord.detail holds at most.
inline constexpr size_t kMaxErrorDetailBytes = 8 << 10;

// `message` with what differs between occurrences of one error replaced, so
// that they group: a leading time stamp dropped; UUIDs as <uuid>, IPv4
// addresses (with their port) as <ip>, 0x... and hex ids (8 hex digits or
// more, one of them a digit) as <hex>, quoted values as '<str>' / "<str>",
// other numbers as <n> ("order 42 not found" and "order 7 not found" are
// "order <n> not found"; "1500ms" is "<n>ms"). Digits inside words stay
// ("utf8", "user_42").
std::string NormaliseErrorMessage(absl::string_view message);

// One error a service wrote to its log.
struct LoggedError {
  // The error line, or a traceback's last line (its exception).
  std::string message;
  // Its lines, after the few written just before them, at most
  // kMaxErrorDetailBytes (the last ones kept).
  std::string detail;
  // When its last line was written.
  absl::Time time;
};

// Finds the errors in a service's log, fed its lines in order: lines at a
// level of ERROR, CRITICAL, FATAL or PANIC (as words, or level=error in
// logfmt and JSON), lines that start with an exception ("ValueError: ...",
// "java.io.IOException: ...", "panic: ..."), each with the indented lines
// that follow it (its stack); and a Python traceback, chained ones
// included, as one error whose message is its last line. Memory is bounded
// whatever the log holds.
class ErrorLogScanner final {
 public:
  explicit ErrorLogScanner(std::function<void(LoggedError)> on_error)
      : on_error_(std::move(on_error)) {}

  void Add(absl::string_view text, absl::Time time);
  // At the end of the log: hands over the error still open.
  void Finish();

 private:
  enum class State {
    kIdle,
    kLine,            // an error line, and its stack
    kTraceback,       // inside "Traceback (most recent call last):"
    kAfterException,  // after a traceback's exception: chained or done
    kChained,         // after "During handling of the above exception..."
  };

  void Start(State state, absl::string_view text, absl::Time time);
  void Append(absl::string_view text, absl::Time time);
  void Emit();

  std::function<void(LoggedError)> on_error_;
  State state_ = State::kIdle;
  // The last lines before an error (its context), while none is open.
  std::deque<std::string> before_;
  // The open error's lines and their size; blank lines held back until a
  // line after them shows they belong to it.
  std::deque<std::string> lines_;
  size_t line_bytes_ = 0;
  bool cut_ = false;
  int held_blanks_ = 0;
  std::string message_;
  absl::Time time_;
};

// One sighting of an error (or several, for a crash record that counts
// restarts).
struct ErrorSighting {
  v1::ErrorKind kind = v1::ERROR_KIND_UNSPECIFIED;
  std::string release_id;
  std::string message;  // as seen; grouped by its normalised form
  std::string detail;
  absl::Time first_time;
  absl::Time last_time;
  int64_t count = 1;
};

// A project's errors grouped by kind and normalised message, each group
// with its count, first and last time, and the release and detail of its
// latest sighting.
class ErrorGroups final {
 public:
  ErrorGroups(std::string project_id, std::string service)
      : project_id_(std::move(project_id)), service_(std::move(service)) {}

  void Add(ErrorSighting sighting);

  // The groups as records, most recently seen first (then by id): ids are
  // stable, the same error has the same id in every answer.
  std::vector<v1::ErrorRecord> Records() const;

 private:
  struct Group {
    v1::ErrorKind kind;
    std::string message;  // normalised
    ErrorSighting latest;
    absl::Time first_time;
    int64_t count = 0;
  };

  std::string project_id_;
  std::string service_;
  std::map<std::string, Group> groups_;  // by kind and normalised message
};

}  // namespace orchestrator::infra
