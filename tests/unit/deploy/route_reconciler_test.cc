// RouteReconciler against mocks: the routes Caddy must have are exactly those
// of the LIVE releases; containers no release needs go, but never one still
// draining.
#include "services/deploy/domain/route_reconciler.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "services/deploy/domain/deployer.h"
#include "tests/mocks/mock_container_engine.h"
#include "tests/mocks/mock_release_store.h"
#include "tests/mocks/mock_router.h"
#include "tests/unit/deploy/one_server.h"

namespace orchestrator::deploy {
namespace {

using google::protobuf::util::TimeUtil;
using ::testing::_;
using ::testing::ElementsAre;
using ::testing::Return;
using ::testing::StrictMock;

v1::Release Release(const std::string& id, const std::string& project, v1::ReleaseStatus status,
                    int port = 0, const std::string& url = "") {
  v1::Release r;
  r.set_id(id);
  r.set_project_id(project);
  r.set_status(status);
  r.set_port(port);
  r.set_url(url);
  return r;
}

containers::ContainerSummary Container(const std::string& id, const std::string& release) {
  containers::ContainerSummary c;
  c.id = id;
  c.labels[kReleaseLabel] = release;
  return c;
}

class RouteReconcilerTest : public ::testing::Test {
 protected:
  std::shared_ptr<StrictMock<MockReleaseStore>> releases_ =
      std::make_shared<StrictMock<MockReleaseStore>>();
  std::shared_ptr<StrictMock<router::MockRouter>> router_ =
      std::make_shared<StrictMock<router::MockRouter>>();
  std::shared_ptr<StrictMock<containers::MockContainerEngine>> engine_ =
      std::make_shared<StrictMock<containers::MockContainerEngine>>();
  RouteReconciler reconciler_{releases_, std::make_shared<OneServer>(engine_, router_, nullptr),
                              std::make_shared<absl::Mutex>(), "ins_test"};
};

TEST_F(RouteReconcilerTest, TheRoutesAreThoseOfTheLiveReleases) {
  EXPECT_CALL(*releases_, AllLive())
      .WillRepeatedly(Return(std::vector<v1::Release>{
          Release("rel_1", "prj_A1", v1::RELEASE_STATUS_LIVE, 30001,
                  "http://prj-a1.localhost:8090"),
          Release("rel_2", "prj_b2", v1::RELEASE_STATUS_LIVE, 30002, "http://prj-b2.example.com"),
          // Not started yet: no route.
          Release("rel_3", "prj_c3", v1::RELEASE_STATUS_LIVE, 0, "")}));
  EXPECT_CALL(*router_,
              Reconcile(ElementsAre(
                  router::Route{"orchestrator-prj-a1", {"prj-a1.localhost"}, "127.0.0.1:30001"},
                  router::Route{"orchestrator-prj-b2", {"prj-b2.example.com"}, "127.0.0.1:30002"})))
      .WillOnce(Return(router::ReconcileReport{}));
  EXPECT_TRUE(reconciler_.ReconcileRoutes().ok());
}

// Only this installation's containers are looked at.
auto OfThisInstallation() {
  return ::testing::Truly([](const std::vector<containers::LabelMatch>& labels) {
    return std::any_of(labels.begin(), labels.end(), [](const containers::LabelMatch& l) {
      return l.key == kInstallationLabel && l.value == std::optional<std::string>("ins_test");
    });
  });
}

TEST_F(RouteReconcilerTest, OrphansGoButLiveDeployingAndDrainingContainersStay) {
  EXPECT_CALL(*releases_, AllLive()).WillRepeatedly(Return(std::vector<v1::Release>{}));
  EXPECT_CALL(*engine_, ListContainers(OfThisInstallation(), true))
      .WillOnce(Return(std::vector<containers::ContainerSummary>{
          Container("c-live", "rel_live"), Container("c-deploying", "rel_deploying"),
          Container("c-failed", "rel_failed"), Container("c-draining", "rel_draining"),
          Container("c-old", "rel_old"), Container("c-unknown", "rel_unknown")}));
  EXPECT_CALL(*releases_, Get("rel_live"))
      .WillOnce(Return(Release("rel_live", "p", v1::RELEASE_STATUS_LIVE)));
  EXPECT_CALL(*releases_, Get("rel_deploying"))
      .WillOnce(Return(Release("rel_deploying", "p", v1::RELEASE_STATUS_DEPLOYING)));
  EXPECT_CALL(*releases_, Get("rel_failed"))
      .WillOnce(Return(Release("rel_failed", "p", v1::RELEASE_STATUS_FAILED)));
  auto draining = Release("rel_draining", "p", v1::RELEASE_STATUS_SUPERSEDED);
  *draining.mutable_superseded_time() =
      TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(absl::Now()));
  EXPECT_CALL(*releases_, Get("rel_draining")).WillOnce(Return(draining));
  auto old = Release("rel_old", "p", v1::RELEASE_STATUS_SUPERSEDED);
  *old.mutable_superseded_time() =
      TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(absl::Now() - absl::Hours(1)));
  EXPECT_CALL(*releases_, Get("rel_old")).WillOnce(Return(old));
  EXPECT_CALL(*releases_, Get("rel_unknown")).WillOnce(Return(absl::NotFoundError("gone")));
  EXPECT_CALL(*engine_, RemoveContainer("c-failed", true)).WillOnce(Return(absl::OkStatus()));
  EXPECT_CALL(*engine_, RemoveContainer("c-old", true)).WillOnce(Return(absl::OkStatus()));
  EXPECT_CALL(*engine_, RemoveContainer("c-unknown", true)).WillOnce(Return(absl::OkStatus()));
  EXPECT_EQ(reconciler_.RemoveOrphans().value_or(-1), 3);
}

TEST_F(RouteReconcilerTest, ADatabaseItCannotReadRemovesNothing) {
  EXPECT_CALL(*releases_, AllLive()).WillRepeatedly(Return(std::vector<v1::Release>{}));
  EXPECT_CALL(*engine_, ListContainers(_, true))
      .WillOnce(Return(std::vector<containers::ContainerSummary>{Container("c", "rel_x")}));
  EXPECT_CALL(*releases_, Get("rel_x")).WillOnce(Return(absl::UnavailableError("db down")));
  EXPECT_EQ(reconciler_.RemoveOrphans().status().code(), absl::StatusCode::kUnavailable);
}

// The local server and one reached over SSH, each with its own router and
// engine; a third that cannot be reached now.
class TwoServers final : public ServerTargets {
 public:
  absl::StatusOr<ServerTarget> For(const std::string&, const std::string& id) override {
    if (id == "srv_away") return absl::UnavailableError("server away: Connection refused");
    return id == "srv_remote" ? remote : local;
  }
  const ServerTarget& Local() const override { return local; }
  ServerTarget local, remote;
};

TEST_F(RouteReconcilerTest, EachServersRouterGetsTheRoutesOfTheReleasesOnItAndNoOthers) {
  auto servers = std::make_shared<TwoServers>();
  servers->local.engine = engine_;
  servers->local.router = router_;
  auto remote_router = std::make_shared<StrictMock<router::MockRouter>>();
  servers->remote.server_id = "srv_remote";
  servers->remote.router = remote_router;
  servers->remote.remote = true;
  RouteReconciler reconciler(releases_, servers, std::make_shared<absl::Mutex>(), "ins_test");
  auto here = Release("rel_1", "prj_a", v1::RELEASE_STATUS_LIVE, 31200, "http://a.localhost:8090");
  here.set_server_id("srv_local");
  auto there = Release("rel_2", "prj_b", v1::RELEASE_STATUS_LIVE, 40000, "http://b.apps.example");
  there.set_server_id("srv_remote");
  auto away = Release("rel_3", "prj_c", v1::RELEASE_STATUS_LIVE, 40001, "http://c.apps.example");
  away.set_server_id("srv_away");
  EXPECT_CALL(*releases_, AllLive())
      .WillRepeatedly(Return(std::vector<v1::Release>{here, there, away}));
  EXPECT_CALL(*router_, Reconcile(ElementsAre(router::Route{
                            "orchestrator-prj-a", {"a.localhost"}, "127.0.0.1:31200"})))
      .WillOnce(Return(router::ReconcileReport{}));
  EXPECT_CALL(*remote_router, Reconcile(ElementsAre(router::Route{
                                  "orchestrator-prj-b", {"b.apps.example"}, "127.0.0.1:40000"})))
      .WillOnce(Return(router::ReconcileReport{}));
  // The two it reached are reconciled; the one it could not is reported.
  auto report = reconciler.ReconcileRoutes();
  EXPECT_EQ(report.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(report.status().message()), ::testing::HasSubstr("srv_away"));
}

TEST_F(RouteReconcilerTest, ReleasesOnAServerItCannotTellApartLeaveTheLocalRoutesAlone) {
  auto servers = std::make_shared<TwoServers>();
  servers->local.engine = engine_;
  servers->local.router = router_;  // strict: any call fails the test
  RouteReconciler reconciler(releases_, servers, std::make_shared<absl::Mutex>(), "ins_test");
  // Whether srv_away is the local server cannot be told now: an empty
  // reconcile of the local router would remove its routes.
  auto away = Release("rel_3", "prj_c", v1::RELEASE_STATUS_LIVE, 40001, "http://c.localhost");
  away.set_server_id("srv_away");
  EXPECT_CALL(*releases_, AllLive()).WillRepeatedly(Return(std::vector<v1::Release>{away}));
  EXPECT_EQ(reconciler.ReconcileRoutes().status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace orchestrator::deploy
