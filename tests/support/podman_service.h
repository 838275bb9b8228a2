#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/temp_dir.h"

namespace orchestrator::testing {

// `podman system service` on a socket in `dir`, in its own process group
// (killed whole at the end).
class PodmanService final {
 public:
  // `containers_conf`: what CONTAINERS_CONF names (this machine needs the
  // repository's tools/image/containers.conf).
  PodmanService(const std::string& dir, const std::string& containers_conf)
      : socket_(absl::StrCat(dir, "/podman.sock")), log_(absl::StrCat(dir, "/podman.log")) {
    const std::string url = absl::StrCat("unix://", socket_);
    const std::string& conf = containers_conf;
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      const int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      dup2(fd, 1);
      dup2(fd, 2);
      setenv("CONTAINERS_CONF", conf.c_str(), 1);
      execlp("podman", "podman", "system", "service", "--time=0", url.c_str(), nullptr);
      _exit(127);
    }
    if (pid_ > 0) setpgid(pid_, pid_);
  }
  ~PodmanService() {
    if (pid_ <= 0) return;
    kill(-pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        kill(-pid_, SIGKILL);  // what it left in its group
        return;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    kill(-pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  PodmanService(const PodmanService&) = delete;
  PodmanService& operator=(const PodmanService&) = delete;

  std::string url() const { return absl::StrCat("unix://", socket_); }
  std::string Log() const { return ReadFile(log_); }

 private:
  const std::string socket_;
  const std::string log_;
  pid_t pid_ = -1;
};

}  // namespace orchestrator::testing
