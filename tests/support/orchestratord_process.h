#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/time/clock.h"

namespace orchestrator::testing {

// A real orchestratord (or any program) started as an operator would, its
// output in `log`; killed when the object goes.
class OrchestratordProcess final {
 public:
  // `argv[0]` is the binary.
  OrchestratordProcess(std::vector<std::string> argv, const std::string& log) {
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~OrchestratordProcess() { Kill(); }
  OrchestratordProcess(const OrchestratordProcess&) = delete;
  OrchestratordProcess& operator=(const OrchestratordProcess&) = delete;

  void Kill() { Signal(SIGKILL); }

  // Sends `sig` and waits for the exit; how long that took.
  absl::Duration Signal(int sig) {
    if (pid_ <= 0) return absl::ZeroDuration();
    const absl::Time start = absl::Now();
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return absl::Now() - start;
  }

 private:
  pid_t pid_ = -1;
};

}  // namespace orchestrator::testing
