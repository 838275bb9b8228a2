#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/temp_dir.h"

namespace orchestrator::testing {

// Where a PodmanService keeps images and containers.
enum class PodmanStorage {
  // The machine's (/var/lib/containers/storage): its images, e.g. the
  // locally made base images.
  kShared,
  // Its own under the service's directory, empty at first: an engine that
  // shares no image with the others, as a remote server's does.
  kPrivate,
};

// `podman system service` on a socket in `dir`, in its own process group
// (killed whole at the end).
class PodmanService final {
 public:
  // `containers_conf`: what CONTAINERS_CONF names (this machine needs the
  // repository's tools/image/containers.conf).
  PodmanService(const std::string& dir, const std::string& containers_conf,
                PodmanStorage storage = PodmanStorage::kShared)
      : dir_(dir),
        socket_(absl::StrCat(dir, "/podman.sock")),
        log_(absl::StrCat(dir, "/podman.log")),
        private_storage_(storage == PodmanStorage::kPrivate) {
    const std::string url = absl::StrCat("unix://", socket_);
    std::vector<std::string> args = {"podman"};
    if (private_storage_) {
      // Podman's global flags: images and containers (--root), their run
      // state (--runroot) and libpod's (--tmpdir) all under `dir`.
      args.insert(args.end(),
                  {"--root", absl::StrCat(dir, "/storage"), "--runroot", absl::StrCat(dir, "/run"),
                   "--tmpdir", absl::StrCat(dir, "/libpod")});
    }
    args.insert(args.end(), {"system", "service", "--time=0", url});
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const std::string& conf = containers_conf;
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      const int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      dup2(fd, 1);
      dup2(fd, 2);
      setenv("CONTAINERS_CONF", conf.c_str(), 1);
      execvp("podman", argv.data());
      _exit(127);
    }
    if (pid_ > 0) setpgid(pid_, pid_);
  }
  ~PodmanService() {
    Stop();
    // The overlay driver bind-mounts its directory onto itself, and that
    // outlives the service: without this the directory cannot be removed.
    if (private_storage_) UnmountUnder(dir_);
  }
  PodmanService(const PodmanService&) = delete;
  PodmanService& operator=(const PodmanService&) = delete;

  std::string url() const { return absl::StrCat("unix://", socket_); }
  std::string Log() const { return ReadFile(log_); }

 private:
  void Stop() {
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

  // Every mount below `dir`, the deepest first.
  static void UnmountUnder(const std::string& dir) {
    std::ifstream mounts("/proc/self/mounts");
    std::vector<std::string> points;
    for (std::string line; std::getline(mounts, line);) {
      std::istringstream fields(line);
      std::string device, point;
      fields >> device >> point;
      if (absl::StartsWith(point, absl::StrCat(dir, "/"))) points.push_back(point);
    }
    std::sort(points.begin(), points.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    for (const std::string& point : points) umount2(point.c_str(), MNT_DETACH);
  }

  const std::string dir_;
  const std::string socket_;
  const std::string log_;
  const bool private_storage_;
  pid_t pid_ = -1;
};

}  // namespace orchestrator::testing
