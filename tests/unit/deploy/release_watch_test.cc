// ReleaseWatch against mocks: a release that fails its health path K times
// in a row within its window after going live is rolled back to the one it
// replaced, once; a healthy probe resets the count; out of its window, or
// with nothing healthy to go back to, it is left alone.
#include "services/deploy/domain/release_watch.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <map>

#include "tests/mocks/mock_release_store.h"
#include "tests/unit/deploy/one_server.h"

namespace orchestrator::deploy {
namespace {

using google::protobuf::util::TimeUtil;
using ::testing::_;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::NiceMock;
using ::testing::Return;

class ScriptedProbe : public HealthProbe {
 public:
  absl::StatusOr<int> Get(int port, const std::string& path, absl::Duration) override {
    probes.push_back(absl::StrCat(port, path));
    if (answers.empty()) return 200;
    auto next = answers.front();
    answers.erase(answers.begin());
    return next;
  }
  std::vector<absl::StatusOr<int>> answers;
  std::vector<std::string> probes;
};

const absl::Time kLive = absl::FromUnixSeconds(1'800'000'000);

v1::Release Live(const std::string& id, int64_t version, const std::string& image,
                 absl::Time live_at = kLive) {
  v1::Release r;
  r.set_id(id);
  r.set_project_id("prj_1");
  r.set_owner_id("u1");
  r.set_version(version);
  r.set_status(v1::RELEASE_STATUS_LIVE);
  r.set_port(30001);
  r.set_image(image);
  r.set_health_path("/healthz");
  *r.mutable_live_time() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(live_at));
  return r;
}

v1::Release Superseded(const std::string& id, int64_t version, const std::string& image) {
  v1::Release r = Live(id, version, image, kLive - absl::Minutes(10));
  r.set_status(v1::RELEASE_STATUS_SUPERSEDED);
  *r.mutable_superseded_time() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(kLive));
  return r;
}

Page<v1::Release> PageOf(std::vector<v1::Release> items) {
  Page<v1::Release> p;
  p.items = std::move(items);
  return p;
}

struct Started {
  std::string failing, target, reason;
};

class ReleaseWatchTest : public ::testing::Test {
 protected:
  ReleaseWatchTest() {
    ReleaseWatchOptions options;
    options.window = absl::Seconds(60);
    options.failures = 3;
    watch_ = std::make_unique<ReleaseWatch>(
        releases_, ProbedBy(probe_),
        [this](const v1::Release& failing, const v1::Release& target, const std::string& reason) {
          started_.push_back({failing.id(), target.id(), reason});
          return absl::OkStatus();
        },
        options, [this] { return now_; });
    // The store counts failures in a row, as PostgreSQL does.
    ON_CALL(*releases_, RecordProbe(_, _))
        .WillByDefault([this](const std::string& id, bool passed) -> absl::StatusOr<int> {
          return failures_[id] = passed ? 0 : failures_[id] + 1;
        });
  }

  std::shared_ptr<NiceMock<MockReleaseStore>> releases_ =
      std::make_shared<NiceMock<MockReleaseStore>>();
  std::shared_ptr<ScriptedProbe> probe_ = std::make_shared<ScriptedProbe>();
  std::vector<Started> started_;
  std::map<std::string, int> failures_;
  absl::Time now_ = kLive + absl::Seconds(5);
  std::unique_ptr<ReleaseWatch> watch_;
};

TEST_F(ReleaseWatchTest, ThreeFailedProbesInARowRollBackToTheReleaseItReplaced) {
  ON_CALL(*releases_, AllLive())
      .WillByDefault(Return(std::vector<v1::Release>{Live("rel_2", 2, "img:2")}));
  ON_CALL(*releases_, List("prj_1", v1::RELEASE_STATUS_SUPERSEDED, _))
      .WillByDefault(Return(PageOf({Superseded("rel_1", 1, "img:1")})));
  probe_->answers = {500, absl::UnavailableError("nothing answered"), 502};
  EXPECT_CALL(*releases_, RecordUnhealthy("rel_2", HasSubstr("rolled back to release 1")))
      .WillOnce(Return(absl::OkStatus()));
  EXPECT_THAT(*watch_->Tick(), IsEmpty());
  EXPECT_THAT(*watch_->Tick(), IsEmpty());
  EXPECT_THAT(*watch_->Tick(), ElementsAre("rel_2"));
  ASSERT_EQ(started_.size(), 1u);
  EXPECT_EQ(started_[0].failing, "rel_2");
  EXPECT_EQ(started_[0].target, "rel_1");
  EXPECT_THAT(started_[0].reason, HasSubstr("failed 3 health checks in a row"));
  EXPECT_THAT(started_[0].reason, HasSubstr("/healthz answered 502"));
  EXPECT_THAT(probe_->probes, ElementsAre("30001/healthz", "30001/healthz", "30001/healthz"));
}

TEST_F(ReleaseWatchTest, AServerTheMeshCannotReachIsNoFailedHealthCheck) {
  ON_CALL(*releases_, AllLive())
      .WillByDefault(Return(std::vector<v1::Release>{Live("rel_2", 2, "img:2")}));
  // Its tunnel down (the probe cannot even be sent): nothing is counted.
  probe_->answers = {absl::FailedPreconditionError("the server is not reachable: ssh: down"),
                     absl::FailedPreconditionError("the server is not reachable: ssh: down"),
                     absl::FailedPreconditionError("the server is not reachable: ssh: down")};
  EXPECT_CALL(*releases_, RecordProbe(_, _)).Times(0);
  EXPECT_CALL(*releases_, RecordUnhealthy(_, _)).Times(0);
  for (int i = 0; i < 3; ++i) EXPECT_THAT(*watch_->Tick(), IsEmpty());
  EXPECT_TRUE(started_.empty());
}

TEST_F(ReleaseWatchTest, TheCountGoesOnWhicheverReplicaProbesNext) {
  ON_CALL(*releases_, AllLive())
      .WillByDefault(Return(std::vector<v1::Release>{Live("rel_2", 2, "img:2")}));
  ON_CALL(*releases_, List("prj_1", v1::RELEASE_STATUS_SUPERSEDED, _))
      .WillByDefault(Return(PageOf({Superseded("rel_1", 1, "img:1")})));
  ON_CALL(*releases_, RecordUnhealthy(_, _)).WillByDefault(Return(absl::OkStatus()));
  // Another replica's watch over the same store and the same release.
  auto probe = std::make_shared<ScriptedProbe>();
  ReleaseWatchOptions options;
  options.window = absl::Seconds(60);
  options.failures = 3;
  ReleaseWatch other(
      releases_, ProbedBy(probe),
      [this](const v1::Release& failing, const v1::Release& target, const std::string& reason) {
        started_.push_back({failing.id(), target.id(), reason});
        return absl::OkStatus();
      },
      options, [this] { return now_; });
  probe_->answers = {500, 500};
  probe->answers = {500};
  EXPECT_THAT(*watch_->Tick(), IsEmpty());
  EXPECT_THAT(*other.Tick(), IsEmpty());
  EXPECT_TRUE(started_.empty()) << "two failures in a row so far";
  EXPECT_THAT(*watch_->Tick(), ElementsAre("rel_2")) << "the third, counted across replicas";
  ASSERT_EQ(started_.size(), 1u);
  EXPECT_EQ(started_[0].target, "rel_1");
}

TEST_F(ReleaseWatchTest, AHealthyProbeStartsTheCountAgain) {
  ON_CALL(*releases_, AllLive())
      .WillByDefault(Return(std::vector<v1::Release>{Live("rel_2", 2, "img:2")}));
  probe_->answers = {500, 500, 200, 500, 500};
  EXPECT_CALL(*releases_, RecordUnhealthy(_, _)).Times(0);
  for (int i = 0; i < 5; ++i) EXPECT_THAT(*watch_->Tick(), IsEmpty());
  EXPECT_TRUE(started_.empty());
}

TEST_F(ReleaseWatchTest, AReleaseOutOfItsWindowOrRolledBackAlreadyIsNotProbed) {
  v1::Release old = Live("rel_2", 2, "img:2", kLive - absl::Minutes(5));
  v1::Release told = Live("rel_3", 3, "img:3");
  told.set_failure_reason("rolled back already");
  ON_CALL(*releases_, AllLive()).WillByDefault(Return(std::vector<v1::Release>{old, told}));
  EXPECT_THAT(*watch_->Tick(), IsEmpty());
  EXPECT_TRUE(probe_->probes.empty());
}

TEST_F(ReleaseWatchTest, WithNothingHealthyToGoBackToItOnlyRecordsWhy) {
  ON_CALL(*releases_, AllLive())
      .WillByDefault(Return(std::vector<v1::Release>{Live("rel_3", 3, "img:1")}));
  // The release it replaced runs the same image: going back would go round.
  ON_CALL(*releases_, List("prj_1", v1::RELEASE_STATUS_SUPERSEDED, _))
      .WillByDefault(Return(PageOf({Superseded("rel_2", 2, "img:1")})));
  probe_->answers = {500, 500, 500};
  EXPECT_CALL(*releases_, RecordUnhealthy("rel_3", HasSubstr("not rolled back")))
      .WillOnce(Return(absl::OkStatus()));
  watch_->Tick().IgnoreError();
  watch_->Tick().IgnoreError();
  watch_->Tick().IgnoreError();
  EXPECT_TRUE(started_.empty());
}

TEST_F(ReleaseWatchTest, ARollbackThatCouldNotStartIsAskedAgainAtTheNextTick) {
  ON_CALL(*releases_, AllLive())
      .WillByDefault(Return(std::vector<v1::Release>{Live("rel_2", 2, "img:2")}));
  ON_CALL(*releases_, List("prj_1", v1::RELEASE_STATUS_SUPERSEDED, _))
      .WillByDefault(Return(PageOf({Superseded("rel_1", 1, "img:1")})));
  int calls = 0;
  watch_ = std::make_unique<ReleaseWatch>(
      releases_, ProbedBy(probe_),
      [&](const v1::Release&, const v1::Release&, const std::string&) {
        return ++calls == 1 ? absl::UnavailableError("database down") : absl::OkStatus();
      },
      ReleaseWatchOptions{}, [this] { return now_; });
  probe_->answers = {500, 500, 500, 500};
  EXPECT_CALL(*releases_, RecordUnhealthy("rel_2", _)).WillOnce(Return(absl::OkStatus()));
  EXPECT_TRUE(watch_->Tick().ok());
  EXPECT_TRUE(watch_->Tick().ok());
  EXPECT_FALSE(watch_->Tick().ok());
  EXPECT_THAT(*watch_->Tick(), ElementsAre("rel_2"));
  EXPECT_EQ(calls, 2);
}

TEST_F(ReleaseWatchTest, NothingGoesBackToAReleaseThatFailedItself) {
  ON_CALL(*releases_, AllLive())
      .WillByDefault(Return(std::vector<v1::Release>{Live("rel_3", 3, "img:3")}));
  v1::Release sick = Superseded("rel_2", 2, "img:2");
  sick.set_failure_reason("release 2 failed 3 health checks in a row");
  ON_CALL(*releases_, List("prj_1", v1::RELEASE_STATUS_SUPERSEDED, _))
      .WillByDefault(Return(PageOf({sick})));
  probe_->answers = {500, 500, 500};
  EXPECT_CALL(*releases_, RecordUnhealthy("rel_3", HasSubstr("not rolled back")))
      .WillOnce(Return(absl::OkStatus()));
  for (int i = 0; i < 3; ++i) watch_->Tick().IgnoreError();
  EXPECT_TRUE(started_.empty());
}

TEST_F(ReleaseWatchTest, OneProjectsFailingRollbackDoesNotStopTheWatchOfTheOthers) {
  v1::Release other = Live("rel_9", 9, "img:9");
  other.set_project_id("prj_2");
  other.set_port(30002);
  ON_CALL(*releases_, AllLive())
      .WillByDefault(Return(std::vector<v1::Release>{Live("rel_2", 2, "img:2"), other}));
  ON_CALL(*releases_, List("prj_1", v1::RELEASE_STATUS_SUPERSEDED, _))
      .WillByDefault(Return(absl::UnavailableError("database down")));
  // prj_1 sick every time, prj_2 healthy: the fourth tick still probes prj_2.
  probe_->answers = {500, 200, 500, 200, 500, 200, 500, 200};
  for (int i = 0; i < 4; ++i) watch_->Tick().IgnoreError();
  EXPECT_THAT(probe_->probes,
              ElementsAre("30001/healthz", "30002/healthz", "30001/healthz", "30002/healthz",
                          "30001/healthz", "30002/healthz", "30001/healthz", "30002/healthz"));
}

}  // namespace
}  // namespace orchestrator::deploy
