#pragma once

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

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

// The token and user the fake knows.
inline constexpr char kFakeGitHubToken[] = "ghp_test0123456789";
inline constexpr char kFakeGitHubUser[] = "octocat";

// The fake GitHub as a child process on a port of its own; SIGTERM at the
// end lets it remove its repositories.
class FakeGitHub final {
 public:
  explicit FakeGitHub(std::vector<std::string> flags = {}) : process_(Argv(std::move(flags))) {}

  void Stop() { process_.Stop(); }
  const std::string& port() const { return process_.port(); }
  std::string url() const { return process_.url(); }

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
  static std::vector<std::string> Argv(std::vector<std::string> flags) {
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
    return argv;
  }

  FakeServerProcess process_;
};

}  // namespace orchestrator::testing
