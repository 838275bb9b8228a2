#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace orchestrator::testing {

// One of tests/fakes' API servers as a child process: `argv` starts it with
// `--port 0`, and it prints the port it listens on as its first line.
// SIGTERM at the end (a fake cleans up on it); it also gets SIGTERM if the
// test process dies.
class FakeServerProcess final {
 public:
  explicit FakeServerProcess(std::vector<std::string> argv) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // not left behind by a test that crashes
      dup2(out[1], 1);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(out[1]);
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    port_ = line;
  }
  ~FakeServerProcess() { Stop(); }
  FakeServerProcess(const FakeServerProcess&) = delete;
  FakeServerProcess& operator=(const FakeServerProcess&) = delete;

  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  const std::string& port() const { return port_; }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }

 private:
  pid_t pid_ = -1;
  std::string port_;
};

}  // namespace orchestrator::testing
