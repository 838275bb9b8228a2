#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "tests/support/temp_dir.h"

namespace orchestrator::testing {

// `caddy run` with nothing but its admin address (and no autosave), in a
// process group of its own with HOME and XDG directories under `dir`, so
// it touches nothing of this machine's.
class CaddyProcess final {
 public:
  CaddyProcess(const TempDir& dir, int admin_port) : dir_(dir), admin_port_(admin_port) {}
  ~CaddyProcess() { Stop(); }
  CaddyProcess(const CaddyProcess&) = delete;
  CaddyProcess& operator=(const CaddyProcess&) = delete;

  // Until it serves its initial config: whether it does.
  bool Start() {
    const std::string config =
        dir_.Write("caddy.json", absl::StrCat(R"({"admin": {"listen": "127.0.0.1:)", admin_port_,
                                              R"(", "config": {"persist": false}}})"));
    std::vector<std::string> env = {"PATH=/usr/bin:/bin", "HOME=" + dir_.Path("home"),
                                    "XDG_CONFIG_HOME=" + dir_.Path("config"),
                                    "XDG_DATA_HOME=" + dir_.Path("data")};
    std::vector<std::string> argv = {"/usr/bin/caddy", "run", "--config", config};
    int err[2];
    if (pipe2(err, O_CLOEXEC) != 0) return false;
    {
      absl::MutexLock lock(&mu_);
      log_.clear();
      serving_ = false;
    }
    // Made before fork: the child of a process with threads may not allocate.
    std::vector<char*> args, envp;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // not left behind by a test that crashes
      dup2(err[1], 2);
      const int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      execve(args[0], args.data(), envp.data());
      _exit(127);
    }
    close(err[1]);
    // Caddy logs to stderr; read to its end so it never blocks on a full pipe.
    reader_ = std::thread([this, fd = err[0]] {
      char buffer[4096];
      ssize_t n;
      while ((n = read(fd, buffer, sizeof(buffer))) > 0) {
        absl::MutexLock lock(&mu_);
        log_.append(buffer, static_cast<size_t>(n));
        if (absl::StrContains(log_, "serving initial configuration")) serving_ = true;
      }
      close(fd);
      absl::MutexLock lock(&mu_);
      exited_ = true;
    });
    absl::MutexLock lock(&mu_);
    const auto started = [this] {
      mu_.AssertReaderHeld();
      return serving_ || exited_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&started), absl::Seconds(20));
    return serving_;
  }

  void Stop() {
    if (pid_ > 0) {
      kill(-pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (reader_.joinable()) reader_.join();
    absl::MutexLock lock(&mu_);
    exited_ = false;
  }

  std::string log() const {
    absl::MutexLock lock(&mu_);
    return log_;
  }

 private:
  const TempDir& dir_;
  const int admin_port_;
  pid_t pid_ = -1;
  std::thread reader_;
  mutable absl::Mutex mu_;  // guards what the reader learnt from Caddy's log
  std::string log_ ABSL_GUARDED_BY(mu_);
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
  bool exited_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace orchestrator::testing
