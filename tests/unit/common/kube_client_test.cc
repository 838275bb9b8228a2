// The Kubernetes client's configuration (in-cluster, kubeconfig) and how the
// API server's error answers become statuses.
#include "services/common/kubernetes/kube_client.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace orchestrator::kubernetes {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

constexpr char kCa[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

std::string Write(const TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.path() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

nlohmann::json Kubeconfig(const nlohmann::json& user, const std::string& ns = "") {
  nlohmann::json context = {{"cluster", "c1"}, {"user", "u1"}};
  if (!ns.empty()) context["namespace"] = ns;
  return {{"apiVersion", "v1"},
          {"kind", "Config"},
          {"current-context", "ctx"},
          {"clusters",
           {{{"name", "c1"},
             {"cluster",
              {{"server", "https://10.0.0.1:6443"},
               {"certificate-authority-data", absl::Base64Escape(kCa)}}}}}},
          {"users", {{{"name", "u1"}, {"user", user}}}},
          {"contexts", {{{"name", "ctx"}, {"context", context}}}}};
}

TEST(KubeconfigConfig, ReadsTheCurrentContextsServerCaTokenAndNamespace) {
  TempDir dir;
  const std::string path =
      Write(dir, "config.json", Kubeconfig({{"token", "t0k3n"}}, "apps").dump());
  auto config = KubeconfigConfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://10.0.0.1:6443");
  EXPECT_EQ(config->ca_pem, kCa);
  EXPECT_EQ(config->token, "t0k3n");
  EXPECT_EQ(config->namespace_name, "apps");
  EXPECT_THAT(config->source, HasSubstr("context ctx"));

  const std::string defaulted = Write(dir, "default.json", Kubeconfig({{"token", "t"}}).dump());
  EXPECT_EQ(KubeconfigConfig(defaulted)->namespace_name, "default");
}

TEST(KubeconfigConfig, RefusesWhatItCannotUseSayingWhatToDo) {
  TempDir dir;
  auto yaml = KubeconfigConfig(Write(dir, "config", "apiVersion: v1\nkind: Config\n"));
  EXPECT_EQ(yaml.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(yaml.status().message(), HasSubstr("kubectl config view --raw"));

  auto exec = KubeconfigConfig(
      Write(dir, "exec.json", Kubeconfig({{"exec", {{"command", "aws"}}}}).dump()));
  EXPECT_THAT(exec.status().message(), HasSubstr("\"exec\", which is not supported"));

  auto other = KubeconfigConfig(Write(dir, "c.json", Kubeconfig({{"token", "t"}}).dump()), "prod");
  EXPECT_THAT(other.status().message(), HasSubstr("has no context prod"));

  nlohmann::json insecure = Kubeconfig({{"token", "t"}});
  insecure["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = true;
  auto skip = KubeconfigConfig(Write(dir, "i.json", insecure.dump()));
  EXPECT_THAT(skip.status().message(), HasSubstr("insecure-skip-tls-verify is refused"));

  EXPECT_EQ(KubeconfigConfig(dir.path() + "/missing").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(InClusterConfig, ReadsTheServiceAccountAndTheServiceAddress) {
  TempDir dir;
  Write(dir, "token", "sa-token\n");
  Write(dir, "ca.crt", kCa);
  Write(dir, "namespace", "orchestrator\n");
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  EXPECT_THAT(InClusterConfig(dir.path()).status().message(), HasSubstr("not in a Kubernetes Pod"));
  ::setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto config = InClusterConfig(dir.path());
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  ::unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://10.96.0.1:443");
  EXPECT_EQ(config->token_file, dir.path() + "/token");
  EXPECT_EQ(config->ca_pem, kCa);
  EXPECT_EQ(config->namespace_name, "orchestrator");
}

http::Response Answer(int status, const std::string& reason, const std::string& message) {
  http::Response r;
  r.status = status;
  r.body = nlohmann::json({{"kind", "Status"},
                           {"apiVersion", "v1"},
                           {"status", "Failure"},
                           {"reason", reason},
                           {"message", message},
                           {"code", status}})
               .dump();
  return r;
}

TEST(AnswerStatus, MapsTheApiServersAnswersNamingWhatWasAsked) {
  auto forbidden = AnswerStatus(
      Answer(403, "Forbidden",
             "deployments.apps \"web\" is forbidden: User \"system:serviceaccount:o:o\" cannot "
             "patch resource \"deployments\""),
      "patch", kDeployments, "web");
  EXPECT_EQ(forbidden.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(forbidden.message(), HasSubstr("kubernetes: patch deployments.apps \"web\""));
  EXPECT_THAT(
      forbidden.message(),
      HasSubstr("{apiGroups: [\"apps\"], resources: [\"deployments\"], verbs: [\"patch\"]}"));

  EXPECT_EQ(AnswerStatus(Answer(409, "AlreadyExists", "exists"), "create", kPods, "p").code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(AnswerStatus(Answer(409, "Conflict", "changed"), "update", kPods, "p").code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(AnswerStatus(Answer(404, "NotFound", "gone"), "get", kPods, "p").code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(AnswerStatus(Answer(410, "Expired", "too old"), "watch", kPods, "").code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(AnswerStatus(Answer(422, "Invalid", "bad"), "create", kPods, "p").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AnswerStatus(Answer(401, "Unauthorized", "no"), "list", kPods, "").code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(AnswerStatus(Answer(503, "ServiceUnavailable", "busy"), "list", kPods, "").code(),
            absl::StatusCode::kUnavailable);
  http::Response html;
  html.status = 502;
  html.body = "<html>bad gateway</html>";
  EXPECT_EQ(AnswerStatus(html, "list", kPods, "").code(), absl::StatusCode::kUnavailable);
}

TEST(KubeClient, RefusesAConfigWithoutCredentialsOrWithABadCa) {
  ClusterConfig config;
  config.server = "https://10.0.0.1:6443";
  config.namespace_name = "n";
  config.source = "test";
  EXPECT_THAT(KubeClient::Connect(config).status().message(), HasSubstr("no credentials"));
  config.token = "t";
  config.server = "ftp://x";
  EXPECT_EQ(KubeClient::Connect(config).status().code(), absl::StatusCode::kFailedPrecondition);
  config.server = "https://127.0.0.1:1";
  config.ca_pem = "not a certificate";
  auto client = KubeClient::Connect(config);
  ASSERT_TRUE(client.ok());
  auto got = (*client)->Get(kPods, "p");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(got.status().message(), HasSubstr("CA certificate is not PEM"));
}

}  // namespace
}  // namespace orchestrator::kubernetes
