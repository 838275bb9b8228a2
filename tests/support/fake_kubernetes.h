#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
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

inline constexpr char kFakeKubernetesToken[] = "kube-test-token";

// The fake Kubernetes API (tests/fakes/kubernetes_api.py) as a child
// process on a port of its own, running Pods as local bubblewrap
// processes; `images` maps an image to the host directory its commands
// come from ("orchestrator:test=/path/to/bin").
class FakeKubernetes final {
 public:
  FakeKubernetes(const std::string& data_dir, const std::vector<std::string>& images) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) return;
    std::vector<std::string> argv = {"/usr/bin/python3",
                                     std::string(FAKES_DIR) + "/kubernetes_api.py",
                                     "--port",
                                     "0",
                                     "--token",
                                     kFakeKubernetesToken,
                                     "--data",
                                     data_dir,
                                     "--log",
                                     data_dir + "/requests.jsonl"};
    for (const auto& image : images) {
      argv.push_back("--image");
      argv.push_back(image);
    }
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
  ~FakeKubernetes() { Stop(); }
  FakeKubernetes(const FakeKubernetes&) = delete;
  FakeKubernetes& operator=(const FakeKubernetes&) = delete;

  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  const std::string& port() const { return port_; }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }

  // A kubeconfig (JSON) for the fake, in namespace `ns`, written to `path`.
  void WriteKubeconfig(const std::string& path, const std::string& ns) const {
    const nlohmann::json config = {
        {"apiVersion", "v1"},
        {"kind", "Config"},
        {"current-context", "fake"},
        {"clusters", {{{"name", "fake"}, {"cluster", {{"server", url()}}}}}},
        {"users", {{{"name", "mesh"}, {"user", {{"token", kFakeKubernetesToken}}}}}},
        {"contexts",
         {{{"name", "fake"},
           {"context", {{"cluster", "fake"}, {"user", "mesh"}, {"namespace", ns}}}}}}};
    std::ofstream(path) << config.dump(2);
  }

  // A call of the fake's own /control/ endpoints: its JSON answer.
  nlohmann::json Control(const std::string& method, const std::string& what,
                         const nlohmann::json& body = nullptr) const {
    return Call(method, "/control/" + what, body, false);
  }

  // A call of the API itself, with the token: its JSON answer (any status).
  nlohmann::json Api(const std::string& method, const std::string& path,
                     const nlohmann::json& body = nullptr) const {
    return Call(method, path, body, true);
  }

 private:
  nlohmann::json Call(const std::string& method, const std::string& target,
                      const nlohmann::json& body, bool authorized) const {
    ::orchestrator::http::HttpClient client(*::orchestrator::http::BaseUrl::Parse(url()));
    ::orchestrator::http::Request request;
    request.method = method;
    request.target = target;
    if (!body.is_null()) {
      request.body = body.dump();
      request.headers.emplace_back("Content-Type", "application/json");
    }
    if (authorized) {
      request.headers.emplace_back("Authorization", absl::StrCat("Bearer ", kFakeKubernetesToken));
    }
    auto response = client.Send(request);
    EXPECT_TRUE(response.ok()) << response.status();
    if (!response.ok()) return nullptr;
    nlohmann::json answer = nlohmann::json::parse(response->body, nullptr, false);
    EXPECT_FALSE(answer.is_discarded()) << response->body;
    return answer;
  }

  pid_t pid_ = -1;
  std::string port_;
};

}  // namespace orchestrator::testing
