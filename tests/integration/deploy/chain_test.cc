// From one message to a live URL, with the scripted PO agent (no model
// key) over a whole mesh with the real parts: one message to the PO creates
// a project, scaffolds it, has a (scripted) coding agent change it in a
// sandbox, tested and pushed, deploys it with Podman behind Caddy, and tells
// the user each step as a notification, the last one with the URL that
// serves what the user asked for. "change the text to ..." goes round
// again: engineering, then a new release.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "orchestrator/sessions/v1/sessions.grpc.pb.h"
#include "services/common/status/status.h"
#include "tests/integration/deploy/deploy_fixture.h"
#include "tests/support/test_mesh.h"

namespace orchestrator {
namespace {
using testing::Answer;
using testing::Get;
using ::testing::HasSubstr;
using testing::TestMesh;

class ChainTest : public testing::DeployFixture {
 protected:
  ChainTest() : sessions_(sessions::v1::SessionService::NewStub(mesh_.channel())) {}

  // The PO's answer to `text` (the turn's own reply).
  std::string Send(const std::string& text) {
    auto ctx = TestMesh::Context(token_);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    sessions::v1::SendMessageRequest req;
    req.set_text(text);
    auto reader = sessions_->SendMessage(ctx.get(), req);
    sessions::v1::SendMessageResponse r;
    std::string reply;
    while (reader->Read(&r)) {
      if (r.has_reply()) reply += r.reply().text();
    }
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return reply;
  }

  // The notifications after `after` (a sequence), until one says `until`
  // or `timeout` passes; their texts in order.
  std::vector<std::string> Notifications(int64_t* after, const std::string& until,
                                         absl::Duration timeout) {
    auto ctx = TestMesh::Context(token_);
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    sessions::v1::WatchNotificationsRequest req;
    req.set_after_sequence(*after);
    auto reader = sessions_->WatchNotifications(ctx.get(), req);
    sessions::v1::WatchNotificationsResponse n;
    std::vector<std::string> texts;
    while (reader->Read(&n)) {
      *after = n.notification().sequence();
      texts.push_back(n.notification().text());
      if (texts.back().find(until) != std::string::npos) {
        ctx->TryCancel();
        break;
      }
    }
    reader->Finish();
    return texts;
  }

  absl::StatusOr<jobs::v1::ListProjectHistoryResponse> History(const std::string& project_id,
                                                               const std::string& leading_to) {
    auto ctx = TestMesh::Context(token_);
    jobs::v1::ListProjectHistoryRequest req;
    req.set_project_id(project_id);
    req.set_leading_to(leading_to);
    jobs::v1::ListProjectHistoryResponse resp;
    grpc::Status s =
        jobs::v1::JobService::NewStub(mesh_.channel())->ListProjectHistory(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpcStatus(s);
    return resp;
  }

  // Each step as "what <- index of the step it came from".
  static std::vector<std::string> Lineage(const jobs::v1::ListProjectHistoryResponse& history) {
    std::map<std::string, int> index;
    std::vector<std::string> out;
    for (int i = 0; i < history.steps_size(); ++i) {
      const auto& step = history.steps(i);
      index[step.id()] = i;
      const std::string what = step.kind() == jobs::v1::HISTORY_STEP_KIND_USER_MESSAGE ? "message"
                               : step.kind() == jobs::v1::HISTORY_STEP_KIND_JOB_NEWS
                                   ? "news"
                                   : step.job_kind();
      auto parent = index.find(step.parent_id());
      out.push_back(absl::StrCat(what, " <-",
                                 parent == index.end() ? "" : absl::StrCat(" ", parent->second)));
    }
    return out;
  }

  static std::string UrlIn(const std::vector<std::string>& texts) {
    std::smatch m;
    for (const auto& t : texts) {
      if (std::regex_search(t, m, std::regex(R"(http://[a-z0-9.-]+:\d+)"))) return m[0];
    }
    return "";
  }

  std::unique_ptr<sessions::v1::SessionService::Stub> sessions_;
};

TEST_F(ChainTest, OneMessageBecomesALiveUrlAndAChangeRequestANewRelease) {
  const std::string first = Send("Build a python service called shop that answers Hello chain");
  EXPECT_THAT(first, HasSubstr("Building shop"));
  EXPECT_THAT(first, HasSubstr("scaffolding it"));
  std::smatch project;
  ASSERT_TRUE(std::regex_search(first, project, std::regex("prj_[a-z0-9]+"))) << first;
  projects_made_.push_back(project[0]);  // its containers go at the end

  // Each step is told as it happens; nobody asks for status.
  int64_t seen = 0;
  auto told = Notifications(&seen, "is live at", absl::Seconds(240));
  std::string all;
  for (const auto& t : told) absl::StrAppend(&all, t, "\n");
  ASSERT_THAT(all, HasSubstr("is live at")) << all;
  EXPECT_THAT(all, HasSubstr("Scaffolded shop"));
  EXPECT_THAT(all, HasSubstr("A coding agent is making it answer \"Hello chain\""));
  EXPECT_THAT(all, HasSubstr("passed its tests and was pushed"));
  const std::string url = UrlIn(told);
  ASSERT_FALSE(url.empty()) << all;
  const std::string host = HostOf(url);

  // What the user asked for, through Caddy.
  const Answer page = Get(router_port_, host);
  EXPECT_EQ(page.status, 200);
  EXPECT_THAT(page.body, HasSubstr("Hello chain"));

  // A change: engineering again, then a new release serving it.
  EXPECT_THAT(Send("change the text to Bonjour tout le monde"), HasSubstr("coding agent"));
  told = Notifications(&seen, "is live at", absl::Seconds(240));
  all.clear();
  for (const auto& t : told) absl::StrAppend(&all, t, "\n");
  ASSERT_THAT(all, HasSubstr("is live at")) << all;
  EXPECT_THAT(Get(router_port_, host).body, HasSubstr("Bonjour tout le monde"));

  // The project's history: each step with the one that led to it, from the
  // message that asked to the release that serves it.
  auto history = History(project[0], "");
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_THAT(Lineage(*history),
              ::testing::ElementsAre("message <-", "scaffold <- 0", "news <- 1", "engineering <- 2",
                                     "news <- 3", "deploy <- 4", "message <-", "engineering <- 6",
                                     "news <- 7", "deploy <- 8"));
  EXPECT_THAT(history->steps(0).summary(), HasSubstr("Build a python service called shop"));
  EXPECT_EQ(history->steps(1).state(), jobs::v1::JOB_STATE_SUCCEEDED);
  EXPECT_THAT(history->steps(1).actor(), ::testing::StartsWith("wrk_"));  // the PO's worker
  EXPECT_EQ(history->steps(3).origin().kind(), jobs::v1::JOB_ORIGIN_KIND_JOB);
  EXPECT_EQ(history->steps(3).origin().job_id(), history->steps(1).id());
  const auto& made = history->steps(9).made();
  ASSERT_TRUE(made.contains("release_id")) << history->DebugString();
  EXPECT_EQ(made.at("url"), url);
  EXPECT_EQ(history->steps(9).made().at("commit_sha"), history->steps(7).made().at("commit_sha"));
  EXPECT_TRUE(history->messages_unavailable().empty()) << history->messages_unavailable();

  // Which message asked for this release?
  auto asked = History(project[0], made.at("release_id"));
  ASSERT_TRUE(asked.ok()) << asked.status();
  EXPECT_THAT(Lineage(*asked),
              ::testing::ElementsAre("message <-", "engineering <- 0", "news <- 1", "deploy <- 2"));
  EXPECT_THAT(asked->steps(0).summary(), HasSubstr("change the text to Bonjour tout le monde"));
  EXPECT_EQ(History(project[0], "rel_nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ChainTest, ASecondBuildWhileOneRunsStartsNothingElse) {
  const std::string first = Send("build a python service called shop that answers one");
  EXPECT_THAT(first, HasSubstr("Building shop"));
  std::smatch project;
  if (std::regex_search(first, project, std::regex("prj_[a-z0-9]+"))) {
    projects_made_.push_back(project[0]);
  }
  // Queued behind the first turn: told about shop's progress (still
  // building, or its scaffold done and the next step started), and no
  // second project made.
  const std::string second = Send("build a python service called other that answers two");
  EXPECT_THAT(second, HasSubstr("shop"));
  EXPECT_THAT(second, ::testing::Not(HasSubstr("Building other")));
}

}  // namespace
}  // namespace orchestrator
