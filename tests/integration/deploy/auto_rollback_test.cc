// The watch after a switch, with the real Podman and Caddy: a commit whose
// health passes the gate and fails soon after is rolled back to the release
// it replaced, by a job the platform starts on its own; the owner is told
// why; the release it went back to is not rolled back in turn.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "orchestrator/sessions/v1/sessions.grpc.pb.h"
#include "tests/integration/deploy/deploy_fixture.h"

namespace orchestrator {
namespace {
using testing::Answer;
using testing::Get;
using ::testing::HasSubstr;
using testing::TestMesh;

// Answers /healthz for its first seconds, then 500: healthy through the
// health gate, sick once live.
constexpr char kSickSoon[] = R"(import os, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
START = time.monotonic()
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        sick = self.path == "/healthz" and time.monotonic() - START > 4
        body = b"sick" if sick else b"v2 ok"
        self.send_response(500 if sick else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
)";

class AutoRollbackTest : public testing::DeployFixture {
 protected:
  AutoRollbackTest()
      : DeployFixture([](MeshConfig& c) {
          c.deploy_watch_window = std::chrono::seconds(30);
          c.deploy_watch_failures = 3;
        }),
        sessions_(sessions::v1::SessionService::NewStub(mesh_.channel())) {}

  std::unique_ptr<sessions::v1::SessionService::Stub> sessions_;
};

TEST_F(AutoRollbackTest, AReleaseThatFallsSickAfterItsSwitchIsRolledBackAndTheOwnerTold) {
  const std::string shop = ScaffoldedProject("shop");
  SetDeployFix(shop, projects::v1::DEPLOY_FIX_OFF);  // the rollback alone (see deploy_fix_test)
  ASSERT_EQ(Deploy(shop).state(), jobs::v1::JOB_STATE_SUCCEEDED);
  const std::string first_id = Releases(shop)[0].id();
  const std::string host = HostOf(Releases(shop)[0].url());

  PushChange(shop, {{"app.py", kSickSoon}}, "sick soon");
  const auto sick = Deploy(shop);
  ASSERT_EQ(sick.state(), jobs::v1::JOB_STATE_SUCCEEDED) << sick.error().message();
  EXPECT_EQ(Get(router_port_, host).body, "v2 ok") << "the gate passed: v2 serves";

  // Within the window: 3 failed probes, then a rollback job and its switch.
  std::vector<deploy::v1::Release> releases;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    releases = Releases(shop);
    if (releases.size() == 3 && releases[0].status() == deploy::v1::RELEASE_STATUS_LIVE) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_EQ(releases.size(), 3u);
  EXPECT_EQ(releases[0].status(), deploy::v1::RELEASE_STATUS_LIVE);
  EXPECT_EQ(releases[0].rollback_of_release_id(), first_id) << "back to the release it replaced";
  EXPECT_EQ(releases[1].status(), deploy::v1::RELEASE_STATUS_SUPERSEDED);
  EXPECT_THAT(releases[1].failure_reason(), HasSubstr("failed 3 health checks in a row"));
  EXPECT_THAT(releases[1].failure_reason(), HasSubstr("/healthz answered 500"));
  EXPECT_THAT(releases[1].failure_reason(), HasSubstr("rolled back to release 1"));
  const Answer page = Get(router_port_, host);
  EXPECT_EQ(page.status, 200);
  EXPECT_THAT(page.body, HasSubstr("Shop v1")) << "release 1's image serves again";

  // The rollback is a job of the owner's, saying why it was started.
  jobs::v1::Job rollback = Wait(releases[0].job_id());
  EXPECT_EQ(rollback.kind(), "rollback");
  EXPECT_EQ(rollback.owner_id(), user_id_);
  EXPECT_EQ(rollback.state(), jobs::v1::JOB_STATE_SUCCEEDED);
  EXPECT_THAT(rollback.params().fields().at("started_because").string_value(),
              HasSubstr("failed 3 health checks"));

  // She has no session open: the news is a notification of its own.
  auto watch = TestMesh::Context(token_);
  watch->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto notifications = sessions_->WatchNotifications(watch.get(), {});
  sessions::v1::WatchNotificationsResponse told;
  ASSERT_TRUE(notifications->Read(&told));
  EXPECT_EQ(told.notification().job_id(), rollback.id());
  EXPECT_THAT(told.notification().text(), HasSubstr("rolled back to release 1"));
  EXPECT_THAT(told.notification().text(), HasSubstr("It succeeded"));
  watch->TryCancel();

  // Release 1's image stays healthy: nothing more is rolled back.
  absl::SleepFor(absl::Seconds(3));
  releases = Releases(shop);
  ASSERT_EQ(releases.size(), 3u);
  EXPECT_EQ(releases[0].status(), deploy::v1::RELEASE_STATUS_LIVE);
  EXPECT_TRUE(releases[0].failure_reason().empty());
}

}  // namespace
}  // namespace orchestrator
