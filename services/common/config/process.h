#pragma once

#include <csignal>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace orchestrator {

// How every binary of the mesh starts: its usage line, every flag of our own
// sources read from a FLAGS_<name> variable of the environment first, then
// from the command line, which wins. Also turns off
// Abseil's mutex deadlock detection, which Debian's build (without NDEBUG)
// leaves on: a global graph updated on every lock (tests keep it on).
void ParseCommandLineAndEnvironment(int argc, char** argv, absl::string_view usage);

// The directory of this process's own binary (what it installs next to it
// is found from there); "." when it cannot be told.
std::string OwnBinaryDir();

// A secret a flag names a file of (a token): its content without the
// surrounding whitespace; FAILED_PRECONDITION naming `flag` when the file
// cannot be read or is empty.
absl::StatusOr<std::string> ReadSecretFile(absl::string_view flag, const std::string& path);

// SIGTERM and SIGINT, blocked in the calling thread and every thread it
// starts afterwards: they are taken by WaitForTerminationSignal with
// sigwait, never by asynchronous handlers. Call before starting threads.
class TerminationSignals {
 public:
  TerminationSignals();
  // Blocks until one arrives; returns "SIGTERM" or "SIGINT".
  const char* Wait() const;

 private:
  sigset_t set_;
};

}  // namespace orchestrator
