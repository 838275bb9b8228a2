// ServiceDiagnostics against a mock container engine and fakes of its
// peers: the overall health a user reads from the checks, the error history
// a page at a time, and logs without the project's secrets.
#include "services/infra/domain/service_diagnostics.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "tests/mocks/mock_container_engine.h"

namespace orchestrator::infra {
namespace {

using google::protobuf::util::TimeUtil;
using ::testing::_;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Invoke;
using ::testing::NiceMock;
using ::testing::Not;
using ::testing::Return;
using ::testing::SizeIs;

class FakeReleases final : public ReleaseDirectory {
 public:
  absl::StatusOr<std::optional<deploy::v1::Release>> Live(const std::string& owner,
                                                          const std::string&) override {
    owners.push_back(owner);
    for (const auto& r : releases) {
      if (r.status() == deploy::v1::RELEASE_STATUS_LIVE) return r;
    }
    return std::nullopt;
  }
  absl::StatusOr<std::vector<deploy::v1::Release>> Latest(const std::string& owner,
                                                          const std::string&, int) override {
    owners.push_back(owner);
    return releases;
  }
  std::vector<deploy::v1::Release> releases;  // newest first
  std::vector<std::string> owners;            // whom each call was for
};

class FakeSecrets final : public SecretValues {
 public:
  absl::StatusOr<std::vector<std::string>> Values(const std::string&, const std::string&) override {
    return values;
  }
  std::vector<std::string> values;
};

class FakeRoute final : public RouteProbe {
 public:
  absl::StatusOr<int> Get(const std::string& h, const std::string& p, absl::Duration) override {
    host = h;
    path = p;
    return answer;
  }
  absl::StatusOr<int> answer = 200;
  std::string host, path;
};

deploy::v1::Release Live() {
  deploy::v1::Release r;
  r.set_id("rel-2");
  r.set_project_id("shop");
  r.set_status(deploy::v1::RELEASE_STATUS_LIVE);
  r.set_url("http://shop.localhost:8090");
  r.set_health_path("/healthz");
  r.set_container_name("orch-shop-r2");
  return r;
}

containers::ContainerInfo Running(int restarts = 0) {
  containers::ContainerInfo info;
  info.name = "orch-shop-r2";
  info.running = true;
  info.status = "running";
  info.restart_count = restarts;
  info.started_at = absl::FromUnixSeconds(1'700'000'000);
  return info;
}

containers::LogLine Line(const std::string& text, absl::Time t) {
  containers::LogLine line;
  line.text = text;
  line.time = t;
  return line;
}

// Every release runs on the one server the test's engine and route are.
class OneSite final : public ReleaseSites {
 public:
  explicit OneSite(ReleaseSite site) : site_(std::move(site)) {}
  absl::StatusOr<ReleaseSite> For(const std::string&) override { return site_; }

 private:
  ReleaseSite site_;
};

class ServiceDiagnosticsTest : public ::testing::Test {
 protected:
  ServiceDiagnosticsTest()
      : releases_(std::make_shared<FakeReleases>()),
        secrets_(std::make_shared<FakeSecrets>()),
        route_(std::make_shared<FakeRoute>()),
        engine_(std::make_shared<NiceMock<containers::MockContainerEngine>>()),
        diagnostics_(releases_, secrets_,
                     std::make_shared<OneSite>(ReleaseSite{engine_, route_, nullptr}),
                     DiagnosticsOptions{}) {}

  std::vector<std::string> CheckNames(const v1::CheckServiceHealthResponse& health) {
    std::vector<std::string> names;
    for (const auto& c : health.checks()) names.push_back(c.name());
    return names;
  }

  // The engine's output of the container: `lines`, whatever is asked.
  void Writes(std::vector<containers::LogLine> lines) {
    ON_CALL(*engine_, Logs(_, _, _, _))
        .WillByDefault(Invoke([lines](const std::string&, const containers::LogOptions&,
                                      const std::function<bool(const containers::LogLine&)>& on,
                                      const std::atomic<bool>*) {
          for (const auto& l : lines) {
            if (!on(l)) break;
          }
          return absl::OkStatus();
        }));
  }

  std::shared_ptr<FakeReleases> releases_;
  std::shared_ptr<FakeSecrets> secrets_;
  std::shared_ptr<FakeRoute> route_;
  std::shared_ptr<NiceMock<containers::MockContainerEngine>> engine_;
  ServiceDiagnostics diagnostics_;
};

TEST_F(ServiceDiagnosticsTest, NothingLiveIsNotDeployed) {
  auto health = diagnostics_.CheckHealth("alice", "shop");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(health->status(), v1::HEALTH_STATUS_NOT_DEPLOYED);
  EXPECT_TRUE(health->release_id().empty());
  EXPECT_THAT(health->checks(), SizeIs(0));
  EXPECT_THAT(releases_->owners, ElementsAre("alice"));
}

TEST_F(ServiceDiagnosticsTest, EveryCheckPassingIsHealthy) {
  releases_->releases = {Live()};
  ON_CALL(*engine_, InspectContainer("orch-shop-r2")).WillByDefault(Return(Running()));
  ON_CALL(*engine_, MemoryUsage("orch-shop-r2"))
      .WillByDefault(Return(containers::MemoryStats{32 << 20, 512 << 20}));
  auto health = diagnostics_.CheckHealth("alice", "shop");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(health->status(), v1::HEALTH_STATUS_HEALTHY);
  EXPECT_EQ(health->release_id(), "rel-2");
  EXPECT_THAT(CheckNames(*health), ElementsAre("route", "container", "restarts", "memory"));
  // Asked through the route as a browser asking for the release's host.
  EXPECT_EQ(route_->host, "shop.localhost");
  EXPECT_EQ(route_->path, "/healthz");
  EXPECT_TRUE(health->checks(0).has_latency());
  EXPECT_THAT(health->checks(0).message(), HasSubstr("answered 200"));
  EXPECT_EQ(health->checks(3).message(), "32.0 MiB of 512.0 MiB (6%)");
}

TEST_F(ServiceDiagnosticsTest, ServingWithAFailedCheckIsDegraded) {
  releases_->releases = {Live()};
  ON_CALL(*engine_, InspectContainer("orch-shop-r2")).WillByDefault(Return(Running(3)));
  ON_CALL(*engine_, MemoryUsage("orch-shop-r2"))
      .WillByDefault(Return(containers::MemoryStats{500 << 20, 512 << 20}));
  auto health = diagnostics_.CheckHealth("alice", "shop");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(health->status(), v1::HEALTH_STATUS_DEGRADED);
  EXPECT_FALSE(health->checks(2).passed());
  EXPECT_THAT(health->checks(2).message(), HasSubstr("restarted 3 times"));
  EXPECT_FALSE(health->checks(3).passed());  // 98% of its limit
}

TEST_F(ServiceDiagnosticsTest, NotServingThroughTheRouteIsUnhealthy) {
  releases_->releases = {Live()};
  route_->answer = 502;
  containers::ContainerInfo stopped = Running();
  stopped.running = false;
  stopped.status = "exited";
  ON_CALL(*engine_, InspectContainer("orch-shop-r2")).WillByDefault(Return(stopped));
  auto health = diagnostics_.CheckHealth("alice", "shop");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(health->status(), v1::HEALTH_STATUS_UNHEALTHY);
  EXPECT_THAT(CheckNames(*health), ElementsAre("route", "container", "restarts"));
  EXPECT_THAT(health->checks(0).message(), HasSubstr("answered 502"));
  EXPECT_FALSE(health->checks(1).passed());

  route_->answer = absl::UnavailableError("connection refused");
  health = diagnostics_.CheckHealth("alice", "shop");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(health->status(), v1::HEALTH_STATUS_UNHEALTHY);
  EXPECT_THAT(health->checks(0).message(), HasSubstr("no answer"));
}

TEST_F(ServiceDiagnosticsTest, ErrorHistoryGroupsPagesAndKeepsSecretsOut) {
  const absl::Time t0 = absl::Now() - absl::Hours(1);
  deploy::v1::Release failed;
  failed.set_id("rel-3");
  failed.set_status(deploy::v1::RELEASE_STATUS_FAILED);
  failed.set_failure_reason("health gate failed: /healthz answered 500\nits last lines: ...");
  *failed.mutable_create_time() = TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(t0));
  releases_->releases = {failed, Live()};
  // A secret with digits: redacted before the numbers are normalised.
  secrets_->values = {"postgres://u:pw9931@db:5432/x"};
  containers::ContainerInfo restarted = Running(2);
  restarted.finished_at = t0 + absl::Minutes(5);
  ON_CALL(*engine_, InspectContainer("orch-shop-r2")).WillByDefault(Return(restarted));
  Writes({Line("ValueError: order 1 not found for postgres://u:pw9931@db:5432/x",
               t0 + absl::Minutes(1)),
          Line("INFO ok", t0 + absl::Minutes(2)),
          Line("ValueError: order 2 not found for postgres://u:pw9931@db:5432/x",
               t0 + absl::Minutes(3)),
          Line("ValueError: order 3 not found for postgres://u:pw9931@db:5432/x",
               t0 + absl::Minutes(4))});

  v1::GetErrorHistoryRequest request;
  request.set_project_id("shop");
  request.set_page_size(2);
  auto first = diagnostics_.ErrorHistory("alice", request);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_THAT(first->errors(), SizeIs(2));
  EXPECT_FALSE(first->next_page_token().empty());
  request.set_page_token(first->next_page_token());
  auto second = diagnostics_.ErrorHistory("alice", request);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_THAT(second->errors(), SizeIs(1));
  EXPECT_TRUE(second->next_page_token().empty());

  std::vector<v1::ErrorRecord> all(first->errors().begin(), first->errors().end());
  all.push_back(second->errors(0));
  // Most recently seen first: the crash (its last exit), the log error,
  // the failed deploy.
  EXPECT_EQ(all[0].kind(), v1::ERROR_KIND_CRASH);
  EXPECT_EQ(all[0].occurrence_count(), 2);
  EXPECT_EQ(all[1].kind(), v1::ERROR_KIND_LOG);
  EXPECT_EQ(all[1].message(), "ValueError: order <n> not found for [redacted]");
  EXPECT_EQ(all[1].occurrence_count(), 3);
  EXPECT_EQ(all[1].release_id(), "rel-2");
  EXPECT_EQ(TimeUtil::TimestampToSeconds(all[1].first_seen_time()),
            absl::ToUnixSeconds(t0 + absl::Minutes(1)));
  EXPECT_EQ(TimeUtil::TimestampToSeconds(all[1].last_seen_time()),
            absl::ToUnixSeconds(t0 + absl::Minutes(4)));
  EXPECT_THAT(all[1].detail(), Not(HasSubstr("pw9931")));
  EXPECT_EQ(all[2].kind(), v1::ERROR_KIND_HEALTH_CHECK);
  EXPECT_EQ(all[2].release_id(), "rel-3");
  EXPECT_EQ(all[2].message(), "health gate failed: /healthz answered <n>");

  // A token with other filters is refused.
  request.set_kind(v1::ERROR_KIND_LOG);
  EXPECT_EQ(diagnostics_.ErrorHistory("alice", request).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Only one kind; only since a time.
  request.clear_page_token();
  request.set_page_size(0);
  auto logs = diagnostics_.ErrorHistory("alice", request);
  ASSERT_TRUE(logs.ok()) << logs.status();
  ASSERT_THAT(logs->errors(), SizeIs(1));
  EXPECT_EQ(logs->errors(0).kind(), v1::ERROR_KIND_LOG);
  request.set_kind(v1::ERROR_KIND_UNSPECIFIED);
  *request.mutable_since_time() =
      TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(t0 + absl::Minutes(3)));
  auto recent = diagnostics_.ErrorHistory("alice", request);
  ASSERT_TRUE(recent.ok()) << recent.status();
  for (const auto& e : recent->errors()) {
    EXPECT_NE(e.kind(), v1::ERROR_KIND_HEALTH_CHECK);
    if (e.kind() == v1::ERROR_KIND_LOG) {
      EXPECT_EQ(e.occurrence_count(), 2);
    }
  }
}

TEST_F(ServiceDiagnosticsTest, LogsComeInOrderWithoutSecrets) {
  releases_->releases = {Live()};
  secrets_->values = {"hunter2-secret", "abc",  // too short to redact
                      "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD\n-----END KEY-----"};
  const absl::Time t0 = absl::FromUnixSeconds(1'700'000'000);
  Writes({Line("starting with key hunter2-secret", t0), Line("abc served", t0 + absl::Seconds(1)),
          Line("MIIBOgIBAAJBAKj34GkxFhD", t0 + absl::Seconds(2))});
  std::vector<std::string> texts;
  v1::GetServiceLogsRequest request;
  request.set_project_id("shop");
  absl::Status s = diagnostics_.StreamLogs(
      "alice", request,
      [&](v1::GetServiceLogsResponse r) {
        for (const auto& l : r.lines()) {
          EXPECT_EQ(l.source(), "web");
          texts.push_back(l.text());
        }
        return true;
      },
      nullptr);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_THAT(texts, ElementsAre("starting with key [redacted]", "abc served", "[redacted]"));

  request.set_service("worker");
  EXPECT_EQ(diagnostics_.StreamLogs("alice", request, nullptr, nullptr).code(),
            absl::StatusCode::kNotFound);
  releases_->releases.clear();
  request.clear_service();
  EXPECT_EQ(diagnostics_.StreamLogs("alice", request, nullptr, nullptr).code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace orchestrator::infra
