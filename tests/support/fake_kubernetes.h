#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "services/common/http/http_client.h"
#include "tests/support/fake_server_process.h"

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
  FakeKubernetes(const std::string& data_dir, const std::vector<std::string>& images)
      : process_(Argv(data_dir, images)) {}

  void Stop() { process_.Stop(); }
  const std::string& port() const { return process_.port(); }
  std::string url() const { return process_.url(); }

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

  static std::vector<std::string> Argv(const std::string& data_dir,
                                       const std::vector<std::string>& images) {
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
    return argv;
  }

  FakeServerProcess process_;
};

}  // namespace orchestrator::testing
