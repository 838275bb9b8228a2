// How the container engine's answers become statuses, and what the engine
// client lets into a request.
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/containers/engine_errors.h"
#include "services/common/containers/engine_inputs.h"

namespace orchestrator::containers {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

http::Response Answer(int status, std::string body) {
  http::Response response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

TEST(AnswerStatus, MapsEachKindOfRefusal) {
  const std::string podman_404 =
      R"({"cause":"no such container","message":"no container with name or ID \"web-1\" found: no such container","response":404})";
  const absl::Status not_found = AnswerStatus(Answer(404, podman_404), "inspect container web-1");
  EXPECT_EQ(not_found.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(not_found.message(),
            "inspect container web-1: no container with name or ID \"web-1\" found: no such "
            "container");
  EXPECT_EQ(AnswerStatus(Answer(409, R"({"message":"image is in use"})"), "x").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(AnswerStatus(Answer(400, R"({"message":"bad"})"), "x").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AnswerStatus(Answer(403, ""), "x").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(AnswerStatus(Answer(500, R"({"message":"port is already allocated"})"), "x").code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(AnswerStatus(Answer(503, "busy"), "x").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(AnswerStatus(Answer(418, ""), "x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(AnswerStatus(Answer(302, ""), "x").code(), absl::StatusCode::kInternal);
}

TEST(EngineMessage, IsTheJsonMessageOrTheBodyOnOneBoundedLine) {
  EXPECT_EQ(EngineMessage(Answer(500, R"({"message":"no space left on device\n"})")),
            "no space left on device");
  EXPECT_EQ(EngineMessage(Answer(502, "Bad Gateway\r\nfrom a proxy")), "Bad Gateway  from a proxy");
  EXPECT_EQ(EngineMessage(Answer(500, "")), "HTTP 500");
  EXPECT_EQ(EngineMessage(Answer(500, R"({"cause":"x"})")), "HTTP 500");
  const std::string long_message = EngineMessage(Answer(500, std::string(100000, 'm')));
  EXPECT_EQ(long_message.size(), kMaxEngineMessageBytes);
  EXPECT_THAT(long_message, ::testing::EndsWith("..."));
}

TEST(ExchangeStatus, NamesTheEngineAndWhatWasAskedKeepingTheCode) {
  const absl::Status status = ExchangeStatus(
      absl::UnavailableError("GET unix:///tmp/x/podman.sock: connect: Connection refused"),
      "unix:///tmp/x/podman.sock", "GET", "ping");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(),
            "the container engine at unix:///tmp/x/podman.sock: ping: connect: Connection refused");
  EXPECT_EQ(ExchangeStatus(absl::CancelledError("GET unix:///s: cancelled"), "unix:///s", "GET",
                           "logs of container web")
                .code(),
            absl::StatusCode::kCancelled);
}

TEST(EngineInputs, ContainerNames) {
  for (const char* good : {"web", "shop-web-3f2a1c9", "a.b_c-d", "0abc",
                           "f2a43d22c57467e7a3cc00af10604bbb61d1ec401cdff572748248953e86f0f4"}) {
    EXPECT_TRUE(ValidateContainerName("name", good).ok()) << good;
  }
  for (const std::string& bad :
       {std::string(""), std::string("-web"), std::string("/web"), std::string("web/../x"),
        std::string("web?x=1"), std::string("we b"), std::string(129, 'a')}) {
    const absl::Status status = ValidateContainerName("name", bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(status.message()), ::testing::StartsWith("name: ")) << bad;
  }
}

TEST(EngineInputs, ImageReferencesAndIds) {
  for (const char* good :
       {"localhost/orchestrator-template-python:bookworm", "python", "python:3.11-slim",
        "registry.example.com:5000/team/app:v1.2", "docker.io/library/debian",
        "sha256:abee5a0be7bc22dd69301e579daaef81b0fdbb99035f1e510e31aec30a351ec6", "abee5a0be7bc",
        "app__x/a-b.c:TAG_1",
        "localhost/app@sha256:99e63c0881b9b8d4b89473a17fd153798633c66e8d88c5c120c7688b16b8dfb5"}) {
    EXPECT_TRUE(ValidateImageRef("image", good).ok()) << good;
  }
  for (const char* bad :
       {"", "UPPER/case", "app:", ":tag", "app:-x", "a//b", "a/", "/a", "app?x=1", "app#f",
        "app tag", "a..b", "localhost:0/x", "app@sha256:12", "../etc/passwd", "app%2F"}) {
    EXPECT_EQ(ValidateImageRef("image", bad).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(EngineInputs, LabelsEnvAndBuildArgs) {
  EXPECT_TRUE(ValidateLabels("labels", {{"org.codegen-orchestrator/project", "shop 2 ✓"}}).ok());
  EXPECT_THAT(ValidateLabels("labels", {{"", "x"}}).message(), HasSubstr("labels: "));
  EXPECT_EQ(ValidateLabels("labels", {{"k", std::string("a\0b", 3)}}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateLabels("labels", {{"k", "\xff\xfe"}}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateLabelMatches("labels", {{"k=v", std::nullopt}}).code(),
            absl::StatusCode::kInvalidArgument);

  EXPECT_TRUE(ValidateEnv("env", {"PORT=8080", "EMPTY=", "_X=a=b"}).ok());
  const absl::Status no_equals = ValidateEnv("env", {"PORT=8080", "TOKEN"});
  EXPECT_THAT(no_equals.message(), HasSubstr("env[1]"));
  // A value may be a secret: an error repeats only the name.
  const absl::Status bad_name = ValidateEnv("env", {"1BAD=hunter2"});
  EXPECT_EQ(bad_name.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_name.message(), Not(HasSubstr("hunter2")));

  EXPECT_TRUE(ValidateBuildArgs("build_args", {{"BASE_IMAGE", "localhost/x:y"}}).ok());
  EXPECT_THAT(ValidateBuildArgs("build_args", {{"BASE-IMAGE", "x"}}).message(),
              HasSubstr("build_args"));
}

TEST(EngineInputs, RelativePathsStayInside) {
  EXPECT_TRUE(ValidateRelativePath("dockerfile", "Containerfile").ok());
  EXPECT_TRUE(ValidateRelativePath("dockerfile", "deploy/Containerfile.prod").ok());
  for (const char* bad : {"", "/etc/passwd", "../Containerfile", "a/../../b"}) {
    EXPECT_EQ(ValidateRelativePath("dockerfile", bad).code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(EngineInputs, EscapingKeepsUserInputOutOfTheUrlSyntax) {
  EXPECT_EQ(QueryEscape("localhost/app:v1"), "localhost%2Fapp%3Av1");
  EXPECT_EQ(QueryEscape("a b&c=d#e?f%"), "a%20b%26c%3Dd%23e%3Ff%25");
  EXPECT_EQ(QueryEscape(R"({"label":["k=v"]})"), "%7B%22label%22%3A%5B%22k%3Dv%22%5D%7D");
  EXPECT_EQ(PathEscape("localhost/app:v1"), "localhost/app:v1");
  EXPECT_EQ(PathEscape("a?b#c d"), "a%3Fb%23c%20d");
}

TEST(EngineInputs, LabelFiltersAreTheEngineJson) {
  EXPECT_EQ(LabelFilters({{"org.codegen-orchestrator.project", "shop"}, {"managed", std::nullopt}}),
            R"({"label":["org.codegen-orchestrator.project=shop","managed"]})");
  EXPECT_EQ(LabelFilters({}), R"({"label":[]})");
}

TEST(EngineInputs, Utf8) {
  EXPECT_TRUE(IsUtf8("plain"));
  EXPECT_TRUE(IsUtf8("ünïcödé ✓ 𝄞"));
  EXPECT_FALSE(IsUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsUtf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(IsUtf8("\xe2\x82"));          // cut short
  EXPECT_FALSE(IsUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
}

}  // namespace
}  // namespace orchestrator::containers
