#include "services/common/config/process.h"

#include <pthread.h>

#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace orchestrator {

void ParseCommandLineAndEnvironment(int argc, char** argv, absl::string_view usage,
                                    absl::string_view env_flags) {
  absl::SetProgramUsageMessage(
      absl::StrCat(usage, "\nEvery flag may also come from the environment as FLAGS_<name>."));
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Environment first, so flags on the command line win.
  std::vector<char*> args(argv, argv + argc);
  std::string from_env = absl::StrCat("--tryfromenv=", env_flags);
  args.insert(args.begin() + 1, from_env.data());
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
}

TerminationSignals::TerminationSignals() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGTERM);
  sigaddset(&set_, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
}

const char* TerminationSignals::Wait() const {
  int signal = 0;
  sigwait(&set_, &signal);
  return signal == SIGTERM ? "SIGTERM" : "SIGINT";
}

}  // namespace orchestrator
