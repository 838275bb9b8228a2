// Real orchestratord processes (every component, real sandboxes, the
// scripted PO agent) killed with SIGKILL or stopped with SIGTERM while a
// session's turns run and wait: after the restart every accepted message is
// answered once, a retry with the same request id gets that answer, and
// nothing the cut-off turn did is done twice.
#include <fcntl.h>
#include <grpcpp/create_channel.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "orchestrator/admin/v1/admin.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "orchestrator/sessions/v1/sessions.grpc.pb.h"
#include "services/common/crypto/secret_box.h"
#include "tests/support/orchestratord_process.h"
#include "tests/support/send_message_stream.h"
#include "tests/support/test_database.h"

namespace orchestrator::sessions {
namespace {

namespace v1 = ::orchestrator::sessions::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using HealthStatus = grpc::health::v1::HealthCheckResponse;

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// One orchestratord hosting every component, as an operator runs it.
class Orchestratord final {
 public:
  Orchestratord(const std::string& conninfo, const std::string& dir, int port, int index,
                const std::string& drain_deadline)
      : process_(
            {ORCHESTRATORD_BIN, "--services=all", absl::StrCat("--listen=127.0.0.1:", port),
             "--log_level=info", "--drain_deadline=" + drain_deadline, "--database_url=" + conninfo,
             "--secrets_key_file=" + dir + "/secrets.key",
             "--bootstrap_token_file=" + dir + "/admin.token", "--agents_dir=" + dir + "/agents",
             "--rate_limit_per_token=0", "--rate_limit_per_user=0"},
            absl::StrCat(dir, "/orchestratord.", index, ".log")) {}

  void Kill() { process_.Kill(); }
  // Sends `sig` and waits for the process to exit.
  void Signal(int sig) { process_.Signal(sig); }

 private:
  testing::OrchestratordProcess process_;
};

using Turn = testing::Turn;
using Stream = testing::SendMessageStream;

bool IsReply(const v1::SendMessageResponse& r, const std::string& text) {
  return r.has_reply() && r.reply().text() == text;
}

class SessionCrashTest : public ::testing::Test {
 protected:
  SessionCrashTest()
      : dir_((std::filesystem::temp_directory_path() / NewId("session_crash_")).string()),
        port_(FreePort()) {
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ + "/secrets.key") << GenerateSecretKeyBase64() << "\n";
  }
  ~SessionCrashTest() override {
    process_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // Starts orchestratord (again) and waits until it serves.
  void Start(const std::string& drain_deadline = "3s") {
    process_ =
        std::make_unique<Orchestratord>(db_.conninfo(), dir_, port_, ++starts_, drain_deadline);
    channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials());
    stub_ = v1::SessionService::NewStub(channel_);
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (Health() != HealthStatus::SERVING) {
      ASSERT_LT(absl::Now(), deadline) << "orchestratord did not start; see " << dir_;
    }
    if (token_.empty()) {
      std::string admin;
      std::getline(std::ifstream(dir_ + "/admin.token"), admin);
      auto stub = admin::v1::AdminService::NewStub(channel_);
      admin::v1::CreateUserRequest create;
      create.mutable_user()->set_name("alice");
      admin::v1::CreateUserResponse user;
      ASSERT_TRUE(stub->CreateUser(Context(admin).get(), create, &user).ok());
      admin::v1::CreateTokenRequest token_req;
      token_req.set_user_id(user.user().id());
      admin::v1::CreateTokenResponse token;
      ASSERT_TRUE(stub->CreateToken(Context(admin).get(), token_req, &token).ok());
      token_ = token.value();
    }
  }

  // The process's health; UNKNOWN when it does not answer.
  HealthStatus::ServingStatus Health() {
    auto health = grpc::health::v1::Health::NewStub(channel_);
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(500)));
    HealthStatus resp;
    if (!health->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp).ok()) {
      return HealthStatus::UNKNOWN;
    }
    return resp.status();
  }

  static std::unique_ptr<grpc::ClientContext> Context(const std::string& token) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", "Bearer " + token);
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    return ctx;
  }

  Turn Send(const std::string& text, const std::string& request_id) {
    Stream s(*stub_, token_, text, request_id);
    return s.Finish();
  }

  // Every notification so far, waiting until `done` holds of them.
  std::vector<v1::Notification> Notifications(
      const std::function<bool(const std::vector<v1::Notification>&)>& done,
      absl::Duration timeout = absl::Seconds(90)) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token_);
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    auto reader = stub_->WatchNotifications(&ctx, v1::WatchNotificationsRequest());
    std::vector<v1::Notification> out;
    v1::WatchNotificationsResponse r;
    while (!done(out) && reader->Read(&r)) out.push_back(r.notification());
    ctx.TryCancel();
    reader->Finish();
    return out;
  }

  int Projects() {
    auto projects = orchestrator::projects::v1::ProjectService::NewStub(channel_);
    orchestrator::projects::v1::ListProjectsResponse listed;
    EXPECT_TRUE(projects
                    ->ListProjects(Context(token_).get(),
                                   orchestrator::projects::v1::ListProjectsRequest(), &listed)
                    .ok());
    return listed.projects_size();
  }

  testing::TestDatabase db_;
  const std::string dir_;
  const int port_;
  int starts_ = 0;
  std::unique_ptr<Orchestratord> process_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::SessionService::Stub> stub_;
  std::string token_;
};

TEST_F(SessionCrashTest, MessagesCutOffByAKillAreAnsweredOnceAfterTheRestart) {
  constexpr int kRounds = 3;
  Start();
  // Per message id: how many times its answer reached the user unasked (its
  // SendMessage stream, or a notification), and the request id it was sent
  // with.
  std::map<std::string, int> answered;
  std::map<std::string, std::string> request_of;
  int messages = 0;
  for (int round = 1; round <= kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    const std::string shop = absl::StrCat("shop-", round);
    const std::string said = absl::StrCat("Created ", shop, ".");
    // In flight when killed: it has created a project and told the user,
    // and is still at work.
    const std::string first_id = absl::StrCat("round-", round, "-first");
    const std::string second_id = absl::StrCat("round-", round, "-second");
    std::string first_message, second_message;
    {
      Stream first(*stub_, token_,
                   absl::StrCat("run: orchestrator project create ", shop,
                                " --json >/dev/null && orchestrator respond \"", said,
                                "\" >/dev/null && sleep 4 && echo finished ", shop),
                   first_id);
      ASSERT_TRUE(first.WaitFor([&](const auto& r) { return IsReply(r, said); }, absl::Seconds(60)))
          << first.Snapshot().status.error_message() << "; see " << dir_;
      // Queued behind it when killed.
      Stream second(*stub_, token_, "what did i ask", second_id);
      ASSERT_TRUE(
          second.WaitFor([](const auto& r) { return r.has_accepted(); }, absl::Seconds(10)));
      process_->Kill();
      const Turn cut = first.Finish();
      const Turn queued = second.Finish();
      EXPECT_FALSE(cut.status.ok());
      EXPECT_FALSE(queued.status.ok());
      EXPECT_THAT(cut.replies(), ElementsAre(said));  // only what it said before the kill
      EXPECT_EQ(queued.steps[0].accepted().queue_position(), 1);
      first_message = cut.message_id();
      second_message = queued.message_id();
      messages += 2;
      request_of[first_message] = first_id;
      request_of[second_message] = second_id;
      answered[first_message] += static_cast<int>(cut.replies().size()) - 1;  // "said" is no answer
      answered[second_message] += static_cast<int>(queued.replies().size());
    }

    Start();
    // The caller of the queued message is back: its retry follows the turn
    // and gets the answer; it ran after the first message's turn ran again.
    const Turn retried = Send("what did i ask", second_id);
    ASSERT_TRUE(retried.status.ok()) << retried.status.error_message();
    EXPECT_EQ(retried.message_id(), second_message);
    ASSERT_EQ(retried.replies().size(), 1u);
    EXPECT_THAT(retried.replies()[0], HasSubstr("project create " + shop));
    answered[second_message] += 1;

    // The first message's caller is gone: its answer is a notification.
    const auto notes = Notifications([&](const std::vector<v1::Notification>& n) {
      for (const auto& x : n) {
        if (x.message_id() == first_message) return true;
      }
      return false;
    });
    std::string notified;
    for (const auto& n : notes) {
      if (n.message_id() == first_message) notified = n.text();
    }
    EXPECT_THAT(notified, StartsWith("exit 0\nfinished " + shop))
        << "the cut-off turn ran again, but did not do the same";

    // Asking again gets the same answer, and the turn's earlier reply.
    const Turn again = Send("never mind the text", first_id);
    ASSERT_TRUE(again.status.ok()) << again.status.error_message();
    EXPECT_EQ(again.message_id(), first_message);
    EXPECT_THAT(again.replies(), ElementsAre(said, notified));
  }

  // Every notification, once the last message's turn is over.
  const auto notes =
      Notifications([](const std::vector<v1::Notification>&) { return false; }, absl::Seconds(3));
  for (const auto& n : notes) {
    if (n.kind() == v1::NOTIFICATION_KIND_REPLY && request_of.contains(n.message_id())) {
      answered[n.message_id()] += 1;
    }
  }
  int answered_once = 0, duplicated = 0, unanswered = 0;
  for (const auto& [id, request] : request_of) {
    const int times = answered[id];
    answered_once += times == 1;
    duplicated += times > 1;
    unanswered += times == 0;
    EXPECT_EQ(times, 1) << request << " (" << id << ") was answered " << times << " times";
  }
  const int projects = Projects();
  std::printf(
      "figures: rounds=%d messages=%d answered=%d duplicated=%d unanswered=%d projects=%d "
      "(of %d)\n",
      kRounds, messages, answered_once, duplicated, unanswered, projects, kRounds);
  EXPECT_EQ(projects, kRounds) << "a cut-off turn created its project twice";
}

TEST_F(SessionCrashTest, SigtermDuringALongTurnIsBoundedAndTheTurnIsAnsweredAfterTheRestart) {
  Start("2s");
  ASSERT_TRUE(Send("hello", "warm-up").status.ok());  // the PO's worker is up
  auto long_turn = std::make_unique<Stream>(*stub_, token_, "wait 6 seconds", "long-turn");
  ASSERT_TRUE(long_turn->WaitFor(
      [](const auto& r) { return r.has_agent_event() && r.agent_event().has_tool_call(); },
      absl::Seconds(30)));
  const std::string message = long_turn->Snapshot().message_id();

  const absl::Time term = absl::Now();
  std::thread stopping([&] { process_->Signal(SIGTERM); });
  // NOT_SERVING at once, while the turn still runs.
  HealthStatus::ServingStatus health = HealthStatus::SERVING;
  while (health == HealthStatus::SERVING && absl::Now() - term < absl::Seconds(1)) {
    health = Health();
  }
  EXPECT_EQ(health, HealthStatus::NOT_SERVING);
  EXPECT_LT(absl::Now() - term, absl::Milliseconds(1500));
  // New messages are refused with a code that says: retry.
  const Turn late = Send("hello again", "late");
  EXPECT_EQ(late.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(late.status.error_message(), HasSubstr("shutting down"));
  // The running turn is cut off at the drain deadline: its caller hears so.
  const Turn cut = long_turn->Finish();
  EXPECT_EQ(cut.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(cut.status.error_message(), HasSubstr("answered after the restart"));
  EXPECT_TRUE(cut.replies().empty());
  const absl::Duration cut_after = absl::Now() - term;
  // The client goes, as clients of a stopping server do (an idle connection
  // left open holds the gRPC drain, up to its own deadline).
  long_turn.reset();
  stub_.reset();
  channel_.reset();
  stopping.join();
  const absl::Duration shutdown = absl::Now() - term;
  std::printf("figures: turn cut off after %s, exit after %s (--drain_deadline=2s, a 6s turn)\n",
              absl::FormatDuration(cut_after).c_str(), absl::FormatDuration(shutdown).c_str());
  EXPECT_LT(cut_after, absl::Seconds(2) + absl::Seconds(1));
  EXPECT_LT(shutdown, absl::Seconds(2) + absl::Seconds(2));

  Start();
  // The cut-off turn runs again; its caller, back, follows it to the answer.
  const Turn resumed = Send("wait 6 seconds", "long-turn");
  ASSERT_TRUE(resumed.status.ok()) << resumed.status.error_message();
  EXPECT_EQ(resumed.message_id(), message);
  EXPECT_THAT(resumed.replies(), ElementsAre("Waited 6 seconds."));
  // The refused message was never accepted: sent again, it is answered.
  const Turn late_again = Send("hello again", "late");
  ASSERT_TRUE(late_again.status.ok()) << late_again.status.error_message();
  EXPECT_EQ(late_again.replies().size(), 1u);
  // Answered once: to the caller, not also as a notification.
  const auto notes =
      Notifications([](const std::vector<v1::Notification>&) { return false; }, absl::Seconds(2));
  for (const auto& n : notes) EXPECT_NE(n.message_id(), message) << n.text();
}

}  // namespace
}  // namespace orchestrator::sessions
