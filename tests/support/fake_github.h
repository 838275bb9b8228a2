#pragma once

#include <fcntl.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "services/common/http/http_client.h"

// Where tests/fakes lives; the test target defines it.
#ifndef FAKES_DIR
#error "FAKES_DIR must be defined by the test target"
#endif

namespace orchestrator::testing {

// The token and user the fake knows.
inline constexpr char kFakeGitHubToken[] = "ghp_test0123456789";
inline constexpr char kFakeGitHubUser[] = "octocat";

// The fake GitHub as a child process on a port of its own; SIGTERM at the
// end lets it remove its repositories.
class FakeGitHub final {
 public:
  explicit FakeGitHub(std::vector<std::string> flags = {}) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) return;
    std::vector<std::string> argv = {"/usr/bin/python3",
                                     std::string(FAKES_DIR) + "/github_api.py",
                                     "--port",
                                     "0",
                                     "--token",
                                     kFakeGitHubToken,
                                     "--user",
                                     kFakeGitHubUser,
                                     "--org",
                                     "acme"};
    argv.insert(argv.end(), flags.begin(), flags.end());
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
    // It prints its port once it listens.
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    port_ = line;
  }
  ~FakeGitHub() { Stop(); }
  FakeGitHub(const FakeGitHub&) = delete;
  FakeGitHub& operator=(const FakeGitHub&) = delete;

  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  const std::string& port() const { return port_; }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }

  // A call of the fake's own /_fake/ endpoints: its JSON answer.
  google::protobuf::Struct Control(const std::string& method, const std::string& what,
                                   const std::string& json = "") const {
    ::orchestrator::http::HttpClient client(*::orchestrator::http::BaseUrl::Parse(url()));
    ::orchestrator::http::Request request;
    request.method = method;
    request.target = "/_fake/" + what;
    request.body = json;
    google::protobuf::Struct answer;
    auto response = client.Send(request);
    EXPECT_TRUE(response.ok()) << response.status();
    if (response.ok()) {
      EXPECT_EQ(response->status, 200) << response->body;
      EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(response->body, &answer).ok());
    }
    return answer;
  }

  // The full names of the repositories made through the REST API.
  std::vector<std::string> Created() const {
    const google::protobuf::Struct state = Control("GET", "state");
    std::vector<std::string> names;
    for (const auto& v : state.fields().at("created").list_value().values()) {
      names.push_back(v.string_value());
    }
    return names;
  }

 private:
  pid_t pid_ = -1;
  std::string port_;
};

}  // namespace orchestrator::testing
