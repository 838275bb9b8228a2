// InfraService's diagnostics over a whole mesh with the real parts (Podman's
// Docker Engine API, Caddy, the local git host): a deployed project's
// logs (the tail, and a follow that sees new lines and ends when a new
// release replaces the container), its health through the route (healthy,
// then unhealthy once its container stops; not deployed before any
// deploy), and its error history (the same exception with different
// numbers, one record). Another user's project is NOT_FOUND; fields out of
// their bounds are INVALID_ARGUMENT naming the field. The CLI shows all
// three.
#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clients/cli/app.h"
#include "orchestrator/infra/v1/infra.grpc.pb.h"
#include "tests/integration/deploy/deploy_fixture.h"

namespace orchestrator {
namespace {

using google::protobuf::util::TimeUtil;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using testing::Get;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using testing::TestMesh;

// A service that fails every /orders/<n> with the same exception, the
// order's number in its message (the server prints the traceback and
// closes the connection: Caddy answers 502).
constexpr char kOrdersApp[] = R"(import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/orders/"):
            raise ValueError(f"order {self.path.rsplit('/', 1)[1]} not found")
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        print(format % args, file=sys.stderr, flush=True)


print("orders listening", flush=True)
ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
)";

class DiagnosticsTest : public testing::DeployFixture {
 protected:
  DiagnosticsTest() : infra_(infra::v1::InfraService::NewStub(mesh_.channel())) {}

  // A client context with room for a deploy while a stream is open.
  static std::unique_ptr<grpc::ClientContext> StreamContext(const std::string& token) {
    auto ctx = TestMesh::Context(token);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(3));
    return ctx;
  }

  // Every line of a GetServiceLogs that does not follow.
  grpc::Status Logs(const std::string& token, const infra::v1::GetServiceLogsRequest& req,
                    std::vector<common::v1::LogLine>* lines) {
    auto ctx = TestMesh::Context(token);
    auto reader = infra_->GetServiceLogs(ctx.get(), req);
    infra::v1::GetServiceLogsResponse resp;
    while (reader->Read(&resp)) {
      for (const auto& l : resp.lines()) lines->push_back(l);
    }
    return reader->Finish();
  }

  // A stream following `project`'s logs, once it sent the last line.
  struct Follow {
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientReader<infra::v1::GetServiceLogsResponse>> reader;
  };
  Follow FollowFromLastLine(const std::string& project) {
    infra::v1::GetServiceLogsRequest req;
    req.set_project_id(project);
    req.set_tail_lines(1);
    req.set_follow(true);
    Follow follow{StreamContext(token_), nullptr};
    follow.reader = infra_->GetServiceLogs(follow.ctx.get(), req);
    infra::v1::GetServiceLogsResponse first;
    EXPECT_TRUE(follow.reader->Read(&first));
    EXPECT_THAT(first.lines(), SizeIs(1));
    return follow;
  }

  static std::vector<std::string> Texts(const std::vector<common::v1::LogLine>& lines) {
    std::vector<std::string> texts;
    for (const auto& l : lines) texts.push_back(l.text());
    return texts;
  }

  grpc::Status Health(const std::string& token, const std::string& project,
                      infra::v1::CheckServiceHealthResponse* resp) {
    infra::v1::CheckServiceHealthRequest req;
    req.set_project_id(project);
    return infra_->CheckServiceHealth(TestMesh::Context(token).get(), req, resp);
  }

  grpc::Status Errors(const std::string& token, const infra::v1::GetErrorHistoryRequest& req,
                      infra::v1::GetErrorHistoryResponse* resp) {
    return infra_->GetErrorHistory(TestMesh::Context(token).get(), req, resp);
  }

  static const infra::v1::HealthCheck* CheckNamed(const infra::v1::CheckServiceHealthResponse& h,
                                                  const std::string& name) {
    for (const auto& c : h.checks()) {
      if (c.name() == name) return &c;
    }
    return nullptr;
  }

  // The CLI as alice runs it: its exit status, what it printed.
  int Cli(const std::vector<std::string>& args, std::string* out) {
    cli::Environment env;
    env.vars["ORCHESTRATOR_ADDR"] = mesh_.address();
    env.vars["ORCHESTRATOR_TOKEN"] = token_;
    std::ostringstream o, e;
    const int status = cli::Run(args, env, o, e);
    *out = o.str() + e.str();
    return status;
  }

  std::unique_ptr<infra::v1::InfraService::Stub> infra_;
};

TEST_F(DiagnosticsTest, LogsShowTheServiceOutputAndAFollowEndsWhenANewReleaseReplacesIt) {
  const std::string shop = ScaffoldedProject("shop");
  const auto deployed = Deploy(shop);
  ASSERT_EQ(deployed.state(), jobs::v1::JOB_STATE_SUCCEEDED) << LogOf(shop, deployed.id());
  const std::string host = HostOf(Releases(shop)[0].url());
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Get(router_port_, host, "/healthz").status, 200);

  // The service's own lines: its start, and the requests it served.
  infra::v1::GetServiceLogsRequest all;
  all.set_project_id(shop);
  std::vector<common::v1::LogLine> lines;
  grpc::Status s = Logs(token_, all, &lines);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(Texts(lines), Contains(HasSubstr("Shop v1 listening on port 8080")));
  EXPECT_THAT(Texts(lines), Contains(HasSubstr("\"GET /healthz HTTP/1.1\" 200")));
  ASSERT_GT(lines.size(), 3u);
  for (const auto& l : lines) {
    EXPECT_EQ(l.source(), "web");
    EXPECT_EQ(l.stream(), common::v1::LOG_STREAM_STDERR) << l.text();  // Python's logging
    EXPECT_GT(l.emit_time().seconds(), 0);
  }
  // The tail is honoured: the last lines only (the service may write more
  // meanwhile: the platform probes it).
  infra::v1::GetServiceLogsRequest tail = all;
  tail.set_tail_lines(2);
  std::vector<common::v1::LogLine> last;
  s = Logs(token_, tail, &last);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_THAT(last, SizeIs(2));
  std::vector<common::v1::LogLine> after;
  ASSERT_TRUE(Logs(token_, all, &after).ok());
  const auto at = std::search(after.begin(), after.end(), last.begin(), last.end(),
                              [](const common::v1::LogLine& a, const common::v1::LogLine& b) {
                                return a.text() == b.text() &&
                                       a.emit_time().seconds() == b.emit_time().seconds() &&
                                       a.emit_time().nanos() == b.emit_time().nanos();
                              });
  EXPECT_NE(at, after.end()) << "the tail's lines are the log's, in order";
  EXPECT_LE(after.end() - at, 10) << "and among its last";

  // A follow: the last line first, then a line the service writes after
  // the stream opened.
  auto [ctx, reader] = FollowFromLastLine(shop);
  infra::v1::GetServiceLogsResponse resp;
  EXPECT_EQ(Get(router_port_, host, "/written-after-the-stream-opened").status, 404);
  bool seen = false;
  while (!seen && reader->Read(&resp)) {
    for (const auto& l : resp.lines()) {
      seen = seen || absl::StrContains(l.text(), "/written-after-the-stream-opened");
    }
  }
  ASSERT_TRUE(seen);

  // A new release replaces the container: the stream ends by itself.
  PushChange(shop, {{"README.md", "# v2\n"}}, "v2");
  const auto second = Deploy(shop);
  ASSERT_EQ(second.state(), jobs::v1::JOB_STATE_SUCCEEDED) << LogOf(shop, second.id());
  while (reader->Read(&resp)) {
  }
  s = reader->Finish();
  EXPECT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();

  // The CLI shows them too.
  std::string out;
  EXPECT_EQ(Cli({"diagnose", "logs", shop, "--tail", "5"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("Shop v1 listening on port 8080"));
}

TEST_F(DiagnosticsTest, HealthIsCheckedThroughTheRouteAndIsUnhealthyOnceTheContainerStops) {
  const std::string shop = ScaffoldedProject("shop");
  const auto deployed = Deploy(shop);
  ASSERT_EQ(deployed.state(), jobs::v1::JOB_STATE_SUCCEEDED) << LogOf(shop, deployed.id());
  const auto release = Releases(shop)[0];

  infra::v1::CheckServiceHealthResponse health;
  grpc::Status s = Health(token_, shop, &health);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(health.status(), infra::v1::HEALTH_STATUS_HEALTHY) << health.DebugString();
  EXPECT_EQ(health.release_id(), release.id());
  EXPECT_GT(health.check_time().seconds(), 0);
  std::vector<std::string> names;
  for (const auto& c : health.checks()) names.push_back(c.name());
  EXPECT_THAT(names, ElementsAre("route", "container", "restarts", "memory"));
  const auto* route = CheckNamed(health, "route");
  ASSERT_NE(route, nullptr);
  EXPECT_TRUE(route->passed());
  EXPECT_THAT(route->message(), HasSubstr("GET /healthz"));
  EXPECT_THAT(route->message(), HasSubstr("answered 200"));
  EXPECT_GT(TimeUtil::DurationToMicroseconds(route->latency()), 0);
  EXPECT_THAT(CheckNamed(health, "container")->message(), HasSubstr("running"));
  EXPECT_TRUE(CheckNamed(health, "memory")->passed());
  EXPECT_THAT(CheckNamed(health, "memory")->message(), HasSubstr("MiB"));

  // An admin looks at alice's project as she would.
  infra::v1::CheckServiceHealthResponse seen_by_admin;
  s = Health(mesh_.admin_token(), shop, &seen_by_admin);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(seen_by_admin.status(), infra::v1::HEALTH_STATUS_HEALTHY);

  std::string out;
  EXPECT_EQ(Cli({"diagnose", "health", shop}, &out), 0) << out;
  EXPECT_THAT(out, AllOf(HasSubstr("healthy"), HasSubstr("route"), HasSubstr("memory")));

  // Its container stopped behind the platform's back: not serving.
  ASSERT_TRUE(engine_->StopContainer(release.container_name(), absl::Seconds(5)).ok());
  s = Health(token_, shop, &health);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(health.status(), infra::v1::HEALTH_STATUS_UNHEALTHY) << health.DebugString();
  EXPECT_FALSE(CheckNamed(health, "route")->passed());
  EXPECT_FALSE(CheckNamed(health, "container")->passed());
  EXPECT_THAT(CheckNamed(health, "container")->message(), HasSubstr("exited"));
}

TEST_F(DiagnosticsTest, AProjectNeverDeployedIsNotDeployed) {
  projects::v1::CreateProjectRequest create;
  create.mutable_project()->set_name("idle");
  projects::v1::CreateProjectResponse created;
  ASSERT_TRUE(projects_->CreateProject(TestMesh::Context(token_).get(), create, &created).ok());
  const std::string idle = created.project().id();

  infra::v1::CheckServiceHealthResponse health;
  grpc::Status s = Health(token_, idle, &health);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(health.status(), infra::v1::HEALTH_STATUS_NOT_DEPLOYED);
  EXPECT_TRUE(health.release_id().empty());
  EXPECT_THAT(health.checks(), SizeIs(0));

  infra::v1::GetServiceLogsRequest logs;
  logs.set_project_id(idle);
  std::vector<common::v1::LogLine> lines;
  s = Logs(token_, logs, &lines);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("nothing deployed"));

  infra::v1::GetErrorHistoryRequest errors;
  errors.set_project_id(idle);
  infra::v1::GetErrorHistoryResponse history;
  s = Errors(token_, errors, &history);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(history.errors(), SizeIs(0));
}

TEST_F(DiagnosticsTest, TheSameExceptionWithDifferentNumbersIsOneErrorRecord) {
  const std::string orders = ScaffoldedProject("orders");
  PushChange(orders, {{"app.py", kOrdersApp}}, "orders fail");
  const auto deployed = Deploy(orders);
  ASSERT_EQ(deployed.state(), jobs::v1::JOB_STATE_SUCCEEDED) << LogOf(orders, deployed.id());
  const auto release = Releases(orders)[0];
  const std::string host = HostOf(release.url());

  // Followed from its last line, so that the test knows when the service
  // has written what the requests made it write.
  auto [ctx, reader] = FollowFromLastLine(orders);
  infra::v1::GetServiceLogsResponse resp;

  const absl::Time before = absl::Now() - absl::Seconds(1);
  constexpr int kFailures = 5;
  for (int i = 1; i <= kFailures; ++i) {
    EXPECT_EQ(Get(router_port_, host, absl::StrCat("/orders/", i * 7919)).status, 502);
  }
  int raised = 0;
  while (raised < kFailures && reader->Read(&resp)) {
    for (const auto& l : resp.lines()) raised += absl::StartsWith(l.text(), "ValueError: order");
  }
  ASSERT_EQ(raised, kFailures);
  // The caller leaving ends the stream.
  ctx->TryCancel();
  while (reader->Read(&resp)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);

  infra::v1::GetErrorHistoryRequest req;
  req.set_project_id(orders);
  infra::v1::GetErrorHistoryResponse history;
  grpc::Status s = Errors(token_, req, &history);
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::vector<infra::v1::ErrorRecord> logged;
  for (const auto& e : history.errors()) {
    if (e.kind() == infra::v1::ERROR_KIND_LOG) logged.push_back(e);
  }
  ASSERT_THAT(logged, SizeIs(1)) << history.DebugString();
  const auto& error = logged[0];
  EXPECT_EQ(error.message(), "ValueError: order <n> not found");
  EXPECT_EQ(error.occurrence_count(), kFailures);
  EXPECT_EQ(error.release_id(), release.id());
  EXPECT_EQ(error.project_id(), orders);
  EXPECT_EQ(error.service(), "web");
  EXPECT_FALSE(error.id().empty());
  const absl::Time first =
      absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(error.first_seen_time()));
  const absl::Time last =
      absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(error.last_seen_time()));
  EXPECT_GE(first, before);
  EXPECT_LE(first, last);
  EXPECT_LE(last, absl::Now());
  // The detail is the last traceback, with its own number.
  EXPECT_THAT(error.detail(), HasSubstr("Traceback (most recent call last):"));
  EXPECT_THAT(error.detail(), HasSubstr(absl::StrCat("order ", kFailures * 7919, " not found")));

  // A window after the errors holds none of them; another kind neither.
  *req.mutable_since_time() = TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(absl::Now()) + 3600);
  s = Errors(token_, req, &history);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(history.errors(), SizeIs(0));
  req.clear_since_time();
  req.set_kind(infra::v1::ERROR_KIND_CRASH);
  s = Errors(token_, req, &history);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(history.errors(), SizeIs(0)) << history.DebugString();

  std::string out;
  EXPECT_EQ(Cli({"diagnose", "errors", orders, "--kind", "log", "--since", "1h"}, &out), 0) << out;
  EXPECT_THAT(out, AllOf(HasSubstr("ValueError: order <n> not found"), HasSubstr("5")));
}

TEST_F(DiagnosticsTest, AnotherUsersProjectIsNotFound) {
  projects::v1::CreateProjectRequest create;
  create.mutable_project()->set_name("secret-shop");
  projects::v1::CreateProjectResponse created;
  ASSERT_TRUE(projects_->CreateProject(TestMesh::Context(token_).get(), create, &created).ok());
  const std::string shop = created.project().id();
  const std::string bob = mesh_.NewUser("bob").second;

  infra::v1::GetServiceLogsRequest logs;
  logs.set_project_id(shop);
  std::vector<common::v1::LogLine> lines;
  EXPECT_EQ(Logs(bob, logs, &lines).error_code(), grpc::StatusCode::NOT_FOUND);
  logs.set_follow(true);
  EXPECT_EQ(Logs(bob, logs, &lines).error_code(), grpc::StatusCode::NOT_FOUND);
  infra::v1::CheckServiceHealthResponse health;
  EXPECT_EQ(Health(bob, shop, &health).error_code(), grpc::StatusCode::NOT_FOUND);
  infra::v1::GetErrorHistoryRequest errors;
  errors.set_project_id(shop);
  infra::v1::GetErrorHistoryResponse history;
  EXPECT_EQ(Errors(bob, errors, &history).error_code(), grpc::StatusCode::NOT_FOUND);
  // A project that does not exist reads the same.
  errors.set_project_id("no-such-project");
  EXPECT_EQ(Errors(token_, errors, &history).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(DiagnosticsTest, FieldsOutOfBoundsAreInvalidArgumentNamingTheField) {
  const auto refused = [](const grpc::Status& s, const std::string& field) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << field << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(field));
  };
  std::vector<common::v1::LogLine> lines;
  infra::v1::GetServiceLogsRequest logs;
  refused(Logs(token_, logs, &lines), "project_id");
  logs.set_project_id("shop");
  logs.set_tail_lines(10001);
  refused(Logs(token_, logs, &lines), "tail_lines");
  logs.set_tail_lines(-1);
  refused(Logs(token_, logs, &lines), "tail_lines");

  infra::v1::CheckServiceHealthResponse health;
  refused(Health(token_, "", &health), "project_id");
  refused(Health(token_, std::string(129, 'p'), &health), "project_id");

  infra::v1::GetErrorHistoryResponse history;
  infra::v1::GetErrorHistoryRequest errors;
  errors.set_project_id("shop");
  errors.set_page_size(1001);
  refused(Errors(token_, errors, &history), "page_size");
  errors.set_page_size(0);
  errors.set_kind(static_cast<infra::v1::ErrorKind>(99));
  refused(Errors(token_, errors, &history), "kind");
  errors.set_kind(infra::v1::ERROR_KIND_UNSPECIFIED);
  errors.set_page_token(std::string(1025, 't'));
  refused(Errors(token_, errors, &history), "page_token");
}

}  // namespace
}  // namespace orchestrator
