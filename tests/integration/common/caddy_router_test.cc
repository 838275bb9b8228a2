// CaddyRouter against a real Caddy (/usr/bin/caddy, 2.6) started empty for
// each test, with backends in this process that answer with their names:
// what a request for a project's host reaches, through every change.
#include "services/common/router/caddy_router.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/http/http_client.h"
#include "services/common/http/http_server.h"
#include "tests/support/caddy_process.h"
#include "tests/support/free_port.h"
#include "tests/support/temp_dir.h"

namespace orchestrator::router {
namespace {

using ::orchestrator::testing::CaddyProcess;
using ::orchestrator::testing::FreePort;
using ::orchestrator::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kServer[] = "orchestrator";

std::unique_ptr<http::HttpClient> ClientOf(int port) {
  return std::make_unique<http::HttpClient>(
      *http::BaseUrl::Parse(absl::StrCat("http://127.0.0.1:", port)));
}

// A project's release: answers every request with 200 and its name.
class Backend final {
 public:
  explicit Backend(std::string name)
      : server_(http::HttpLimits{}, [name](http::HttpRequest, std::shared_ptr<http::Exchange> ex) {
          ex->Reply(200, "text/plain", name);
        }) {
    auto port = server_.Listen("127.0.0.1:0");
    EXPECT_TRUE(port.ok()) << port.status();
    port_ = port.value_or(0);
    server_.Start(2);
  }
  ~Backend() { server_.Shutdown(std::chrono::milliseconds(0)); }

  std::string upstream() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  http::HttpServer server_;
  int port_ = 0;
};

// Moves this process into a network namespace of its own with loopback up
// and listener migration on (see CheckListenerMigration), before any
// thread starts: threads and Caddy made later live there too, so no port
// collides with the machine's and the machine's settings stay as they are.
// Without the privilege (not root) the tests run on the machine's network;
// what went wrong, "" when nothing did.
std::string EnterPrivateNetwork() {
  if (unshare(CLONE_NEWNET) != 0) return absl::StrCat("unshare: ", std::strerror(errno));
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq loopback{};
  std::strncpy(loopback.ifr_name, "lo", IFNAMSIZ - 1);
  bool up = ioctl(fd, SIOCGIFFLAGS, &loopback) == 0;
  loopback.ifr_flags |= IFF_UP;
  up = up && ioctl(fd, SIOCSIFFLAGS, &loopback) == 0;
  const std::string error = up ? "" : absl::StrCat("bringing lo up: ", std::strerror(errno));
  close(fd);
  std::ofstream(kListenerMigrationSysctl) << "1\n";
  return error;
}

class CaddyRouterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string error = EnterPrivateNetwork();
    if (!error.empty()) std::fprintf(stderr, "on the machine's network: %s\n", error.c_str());
  }

  void SetUp() override {
    ASSERT_TRUE(caddy_.Start()) << caddy_.log();
    router_ = RouterAt(admin_url_);
    ASSERT_NE(router_, nullptr);
  }

  std::unique_ptr<CaddyRouter> RouterAt(const std::string& admin_url) {
    auto router = CaddyRouter::FromConfig({.admin_url = admin_url,
                                           .server_name = kServer,
                                           .listen = absl::StrCat("127.0.0.1:", listen_port_),
                                           .plain_http = true,
                                           .route_id_prefix = "orchestrator-",
                                           .timeout = absl::Seconds(10)});
    EXPECT_TRUE(router.ok()) << router.status();
    return router.ok() ? *std::move(router) : nullptr;
  }

  // A request for `host` through Caddy's front door.
  absl::StatusOr<http::Response> Get(const std::string& host) const {
    http::Request request;
    request.headers = {{"Host", host}};
    request.timeout = absl::Seconds(10);
    return front_->Send(request);
  }

  // The body of a 200 answer for `host`, or what went wrong instead.
  std::string BodyFor(const std::string& host) const {
    auto response = Get(host);
    if (!response.ok()) return response.status().ToString();
    if (response->status != 200) return absl::StrCat("HTTP ", response->status);
    return response->body;
  }

  // A direct call of Caddy's admin API: status and body.
  std::pair<int, std::string> Admin(const std::string& method, const std::string& path,
                                    const std::string& body = "") const {
    http::Request request;
    request.method = method;
    request.target = path;
    request.body = body;
    if (!body.empty()) request.headers = {{"Content-Type", "application/json"}};
    auto response = admin_->Send(request);
    EXPECT_TRUE(response.ok()) << response.status();
    if (!response.ok()) return {0, ""};
    return {response->status, response->body};
  }

  Route RouteOf(const std::string& project, const Backend& backend) const {
    return {.id = "orchestrator-" + project,
            .hosts = {project + ".localhost"},
            .upstream = backend.upstream()};
  }

  TempDir dir_;
  const int admin_port_ = FreePort();
  const int listen_port_ = FreePort();
  const std::string admin_url_ = absl::StrCat("http://127.0.0.1:", admin_port_);
  CaddyProcess caddy_{dir_, admin_port_};
  std::unique_ptr<http::HttpClient> front_ = ClientOf(listen_port_);
  std::unique_ptr<http::HttpClient> admin_ = ClientOf(admin_port_);
  Backend a_{"A"};
  Backend b_{"B"};
  std::unique_ptr<CaddyRouter> router_;
};

TEST_F(CaddyRouterTest, EnsureServerOnAnEmptyCaddyThenARouteReachesItsBackend) {
  // Someone else's server, which must stay as it is.
  const int other_port = FreePort();
  const std::string other = absl::StrCat(
      R"({"listen": ["127.0.0.1:)", other_port,
      R"("], "routes": [{"handle": [{"handler": "static_response", "body": "other"}]}]})");
  ASSERT_EQ(Admin("PUT", "/config/apps/http/servers/other", other).first, 200);

  const absl::Status ensured = router_->EnsureServer();
  ASSERT_TRUE(ensured.ok()) << ensured;
  const auto [status, server] = Admin("GET", "/config/apps/http/servers/orchestrator");
  ASSERT_EQ(status, 200);
  EXPECT_THAT(server, HasSubstr(absl::StrCat(R"("listen":["127.0.0.1:)", listen_port_, "\"]")));
  EXPECT_THAT(server, HasSubstr(R"("automatic_https":{"disable":true})"));
  ASSERT_TRUE(router_->EnsureServer().ok());
  EXPECT_EQ(Admin("GET", "/config/apps/http/servers/orchestrator").second, server);

  ASSERT_TRUE(router_->PutRoute(RouteOf("prj-a", a_)).ok());
  EXPECT_EQ(BodyFor("prj-a.localhost"), "A");
  EXPECT_NE(BodyFor("prj-unknown.localhost"), "A");
  auto other_answer = ClientOf(other_port)->Send(http::Request{});
  ASSERT_TRUE(other_answer.ok()) << other_answer.status();
  EXPECT_EQ(other_answer->body, "other");
}

TEST_F(CaddyRouterTest, PutRouteAgainSwitchesTheUpstreamAndProjectsAreIndependent) {
  ASSERT_TRUE(router_->PutRoute(RouteOf("prj-a", a_)).ok());
  ASSERT_TRUE(router_->PutRoute(RouteOf("prj-b", a_)).ok());
  EXPECT_EQ(BodyFor("prj-a.localhost"), "A");
  EXPECT_EQ(BodyFor("prj-b.localhost"), "A");

  ASSERT_TRUE(router_->PutRoute(RouteOf("prj-a", b_)).ok());
  EXPECT_EQ(BodyFor("prj-a.localhost"), "B");
  EXPECT_EQ(BodyFor("prj-b.localhost"), "A");
  // Again: nothing changes, the route stays one route in its place.
  ASSERT_TRUE(router_->PutRoute(RouteOf("prj-a", b_)).ok());
  EXPECT_THAT(router_->ListRoutes().value_or(std::vector<Route>{}),
              ElementsAre(RouteOf("prj-a", b_), RouteOf("prj-b", a_)));

  // New hosts replace the old ones.
  Route moved = RouteOf("prj-a", b_);
  moved.hosts = {"prj-a2.localhost", "www.prj-a2.localhost"};
  ASSERT_TRUE(router_->PutRoute(moved).ok());
  EXPECT_EQ(BodyFor("prj-a2.localhost"), "B");
  EXPECT_EQ(BodyFor("www.prj-a2.localhost"), "B");
  EXPECT_NE(BodyFor("prj-a.localhost"), "B");
}

TEST_F(CaddyRouterTest, AHostAnotherOwnedRouteServesIsFailedPrecondition) {
  ASSERT_TRUE(router_->PutRoute(RouteOf("prj-a", a_)).ok());
  Route thief = RouteOf("prj-b", b_);
  thief.hosts = {"prj-b.localhost", "prj-a.localhost"};
  const absl::Status status = router_->PutRoute(thief);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(status.message(),
              HasSubstr("orchestrator-prj-a already serves host prj-a.localhost"));
  EXPECT_EQ(BodyFor("prj-a.localhost"), "A");
  EXPECT_THAT(router_->ListRoutes().value_or(std::vector<Route>{}),
              ElementsAre(RouteOf("prj-a", a_)));
}

TEST_F(CaddyRouterTest, OnlyOwnedRoutesAreListedAndReconcileLeavesTheOthers) {
  ASSERT_TRUE(router_->PutRoute(RouteOf("prj-a", a_)).ok());
  ASSERT_TRUE(router_->PutRoute(RouteOf("prj-b", a_)).ok());
  const std::string foreign = R"({"@id": "someone-else", "match": [{"host": ["foreign.localhost"]}],
      "handle": [{"handler": "static_response", "body": "foreign"}], "terminal": true})";
  ASSERT_EQ(Admin("POST", "/config/apps/http/servers/orchestrator/routes", foreign).first, 200);
  EXPECT_THAT(router_->ListRoutes().value_or(std::vector<Route>{}),
              ElementsAre(RouteOf("prj-a", a_), RouteOf("prj-b", a_)));

  auto report = router_->Reconcile({RouteOf("prj-a", b_), RouteOf("prj-c", a_)});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_FALSE(report->server_changed);
  EXPECT_THAT(report->added, ElementsAre("orchestrator-prj-c"));
  EXPECT_THAT(report->updated, ElementsAre("orchestrator-prj-a"));
  EXPECT_THAT(report->removed, ElementsAre("orchestrator-prj-b"));
  EXPECT_THAT(router_->ListRoutes().value_or(std::vector<Route>{}),
              ElementsAre(RouteOf("prj-a", b_), RouteOf("prj-c", a_)));
  EXPECT_EQ(BodyFor("prj-a.localhost"), "B");
  EXPECT_EQ(BodyFor("prj-c.localhost"), "A");
  EXPECT_NE(BodyFor("prj-b.localhost"), "A");
  EXPECT_EQ(BodyFor("foreign.localhost"), "foreign");
  EXPECT_EQ(Admin("GET", "/id/someone-else").first, 200);

  auto again = router_->Reconcile({RouteOf("prj-a", b_), RouteOf("prj-c", a_)});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->changed());

  auto emptied = router_->Reconcile({});
  ASSERT_TRUE(emptied.ok()) << emptied.status();
  EXPECT_THAT(emptied->removed, ElementsAre("orchestrator-prj-a", "orchestrator-prj-c"));
  EXPECT_EQ(BodyFor("foreign.localhost"), "foreign");
}

TEST_F(CaddyRouterTest, ReconcileAfterCaddyRestartedEmptyBringsEveryRouteBack) {
  const std::vector<Route> desired = {RouteOf("prj-a", a_), RouteOf("prj-b", b_)};
  ASSERT_TRUE(router_->Reconcile(desired).ok());
  EXPECT_EQ(BodyFor("prj-b.localhost"), "B");

  caddy_.Stop();
  ASSERT_TRUE(caddy_.Start()) << caddy_.log();
  EXPECT_THAT(router_->ListRoutes().value_or(std::vector<Route>{RouteOf("x", a_)}), IsEmpty());
  EXPECT_FALSE(Get("prj-a.localhost").ok());  // nothing listens

  auto report = router_->Reconcile(desired);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->server_changed);
  EXPECT_THAT(report->added, ElementsAre("orchestrator-prj-a", "orchestrator-prj-b"));
  EXPECT_THAT(report->removed, IsEmpty());
  EXPECT_EQ(BodyFor("prj-a.localhost"), "A");
  EXPECT_EQ(BodyFor("prj-b.localhost"), "B");
}

TEST_F(CaddyRouterTest, EnsureServerFixesAServerMovedElsewhereAndKeepsItsRoutes) {
  ASSERT_TRUE(router_->PutRoute(RouteOf("prj-a", a_)).ok());
  const int elsewhere = FreePort();
  ASSERT_EQ(Admin("PATCH", "/config/apps/http/servers/orchestrator/listen",
                  absl::StrCat(R"(["127.0.0.1:)", elsewhere, "\"]"))
                .first,
            200);
  EXPECT_FALSE(Get("prj-a.localhost").ok());

  auto report = router_->Reconcile({RouteOf("prj-a", a_)});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->server_changed);
  EXPECT_FALSE(!report->added.empty() || !report->updated.empty() || !report->removed.empty());
  EXPECT_EQ(BodyFor("prj-a.localhost"), "A");
}

TEST_F(CaddyRouterTest, RemoveRouteTakesItAwayAndAMissingOneIsFine) {
  ASSERT_TRUE(router_->RemoveRoute("orchestrator-prj-a").ok());
  // Nothing to remove from: no server is made for it.
  EXPECT_EQ(Admin("GET", "/config/apps/http/servers/orchestrator").first, 400);

  ASSERT_TRUE(router_->PutRoute(RouteOf("prj-a", a_)).ok());
  ASSERT_TRUE(router_->PutRoute(RouteOf("prj-b", b_)).ok());
  ASSERT_TRUE(router_->RemoveRoute("orchestrator-prj-a").ok());
  EXPECT_NE(BodyFor("prj-a.localhost"), "A");
  EXPECT_EQ(BodyFor("prj-b.localhost"), "B");
  ASSERT_TRUE(router_->RemoveRoute("orchestrator-prj-a").ok());
  EXPECT_THAT(router_->ListRoutes().value_or(std::vector<Route>{}),
              ElementsAre(RouteOf("prj-b", b_)));
}

TEST_F(CaddyRouterTest, HostileInputIsInvalidArgumentAndNothingIsSent) {
  ASSERT_TRUE(router_->PutRoute(RouteOf("prj-a", a_)).ok());
  const std::string before = Admin("GET", "/config/").second;
  // At an address nothing listens on, an answer other than
  // INVALID_ARGUMENT would mean something was sent.
  auto unreachable = RouterAt(absl::StrCat("http://127.0.0.1:", FreePort()));
  std::vector<Route> hostile;
  for (const std::string id : {"someone-else", "orchestrator-x/../../config", "orchestrator-\"}"}) {
    hostile.push_back({.id = id, .hosts = {"x.localhost"}, .upstream = a_.upstream()});
  }
  for (const std::string host : {"x.localhost\"]}, {\"host\": [\"*", "*.localhost", "X.LOCALHOST",
                                 "x.localhost\r\nHost: evil"}) {
    hostile.push_back({.id = "orchestrator-x", .hosts = {host}, .upstream = a_.upstream()});
  }
  for (const std::string upstream : {"127.0.0.1:80\"}], \"handler\": \"file_server",
                                     "unix//run/docker.sock", "127.0.0.1:0", "127.0.0.1"}) {
    hostile.push_back({.id = "orchestrator-x", .hosts = {"x.localhost"}, .upstream = upstream});
  }
  for (const Route& route : hostile) {
    for (CaddyRouter* router : {router_.get(), unreachable.get()}) {
      EXPECT_EQ(router->PutRoute(route).code(), absl::StatusCode::kInvalidArgument)
          << route.id << " " << route.hosts[0] << " " << route.upstream;
      EXPECT_EQ(router->Reconcile({RouteOf("prj-a", a_), route}).status().code(),
                absl::StatusCode::kInvalidArgument);
    }
  }
  for (CaddyRouter* router : {router_.get(), unreachable.get()}) {
    EXPECT_EQ(router->RemoveRoute("someone-else").code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(router->RemoveRoute("orchestrator-../x").code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(Admin("GET", "/config/").second, before);
  EXPECT_EQ(BodyFor("prj-a.localhost"), "A");
}

TEST_F(CaddyRouterTest, CaddyDownIsUnavailableNamingIt) {
  caddy_.Stop();
  const std::string name = absl::StrCat("Caddy's admin API at ", admin_url_);
  const std::vector<absl::Status> statuses = {
      router_->EnsureServer(), router_->PutRoute(RouteOf("prj-a", a_)),
      router_->RemoveRoute("orchestrator-prj-a"), router_->ListRoutes().status(),
      router_->Reconcile({RouteOf("prj-a", a_)}).status()};
  for (const absl::Status& status : statuses) {
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
    EXPECT_THAT(status.message(), HasSubstr(name));
  }
}

TEST_F(CaddyRouterTest, AConfigCaddyRefusesIsFailedPreconditionWithItsMessage) {
  // Caddy cannot listen where a backend already does.
  auto clash = CaddyRouter::FromConfig({.admin_url = admin_url_, .listen = a_.upstream()});
  ASSERT_TRUE(clash.ok()) << clash.status();
  const absl::Status status = (*clash)->EnsureServer();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(status.message(), HasSubstr(absl::StrCat("Caddy's admin API at ", admin_url_)));
  EXPECT_THAT(status.message(), HasSubstr("loading new config"));
  EXPECT_EQ(Admin("GET", "/config/apps/http/servers/orchestrator").first, 400);
}

TEST_F(CaddyRouterTest, RoutersWritingAtOnceLoseNoneOfEachOthersRoutes) {
  auto other = RouterAt(admin_url_);
  constexpr int kEach = 6;
  auto put_all = [this](CaddyRouter* router, const std::string& who) {
    for (int i = 0; i < kEach; ++i) {
      const absl::Status status = router->PutRoute(RouteOf(absl::StrCat(who, i), a_));
      EXPECT_TRUE(status.ok()) << status;
    }
  };
  std::thread first(put_all, router_.get(), "first");
  std::thread second(put_all, other.get(), "second");
  first.join();
  second.join();
  auto routes = router_->ListRoutes();
  ASSERT_TRUE(routes.ok()) << routes.status();
  EXPECT_EQ(routes->size(), 2u * kEach);
  EXPECT_EQ(BodyFor("first0.localhost"), "A");
  EXPECT_EQ(BodyFor(absl::StrCat("second", kEach - 1, ".localhost")), "A");
}

// What a client sending requests without pause saw.
class LoadRecord final {
 public:
  void Add(const absl::StatusOr<http::Response>& response) {
    absl::MutexLock lock(&mu_);
    if (response.ok() && response->status == 200 && response->body == "A") {
      ++from_a_;
    } else if (response.ok() && response->status == 200 && response->body == "B") {
      ++from_b_;
    } else {
      if (failures_.size() < 5) {
        failures_.push_back(response.ok()
                                ? absl::StrCat("HTTP ", response->status, ": ", response->body)
                                : response.status().ToString());
      }
      ++failed_;
    }
  }
  // Until a response from `name` arrives after `after` of them did.
  bool AwaitFrom(const std::string& name, int after) {
    absl::MutexLock lock(&mu_);
    const int* count = name == "A" ? &from_a_ : &from_b_;
    const auto arrived = [this, count, after] {
      mu_.AssertReaderHeld();
      return *count > after;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&arrived), absl::Seconds(10));
  }
  int from(const std::string& name) const {
    absl::MutexLock lock(&mu_);
    return name == "A" ? from_a_ : from_b_;
  }
  int failed() const {
    absl::MutexLock lock(&mu_);
    return failed_;
  }
  std::vector<std::string> failures() const {
    absl::MutexLock lock(&mu_);
    return failures_;
  }

 private:
  mutable absl::Mutex mu_;  // guards the counts
  int from_a_ ABSL_GUARDED_BY(mu_) = 0;
  int from_b_ ABSL_GUARDED_BY(mu_) = 0;
  int failed_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> failures_ ABSL_GUARDED_BY(mu_);
};

TEST_F(CaddyRouterTest, SwitchingUnderLoadLosesNoRequest) {
  const absl::Status migration = CheckListenerMigration();
  ASSERT_TRUE(migration.ok()) << migration
                              << " (as root, the test sets it in a namespace of its own)";
  ASSERT_TRUE(router_->PutRoute(RouteOf("prj-a", a_)).ok());
  ASSERT_EQ(BodyFor("prj-a.localhost"), "A");
  LoadRecord record;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int i = 0; i < 2; ++i) {
    clients.emplace_back([&] {
      while (!stop.load()) record.Add(Get("prj-a.localhost"));
    });
  }
  constexpr int kSwitches = 20;
  constexpr int kRequestsPerSwitch = 100;
  for (int i = 1; i <= kSwitches; ++i) {
    const Backend& next = i % 2 == 1 ? b_ : a_;
    const std::string name = i % 2 == 1 ? "B" : "A";
    const int seen = record.from(name);
    const absl::Status status = router_->PutRoute(RouteOf("prj-a", next));
    ASSERT_TRUE(status.ok()) << status;
    // The switch took effect, and held under load, before the next one.
    EXPECT_TRUE(record.AwaitFrom(name, seen + kRequestsPerSwitch)) << "switch " << i;
  }
  stop = true;
  for (auto& client : clients) client.join();
  EXPECT_EQ(record.failed(), 0) << ::testing::PrintToString(record.failures());
  EXPECT_GE(record.from("A") + record.from("B"), kSwitches * kRequestsPerSwitch);
}

}  // namespace
}  // namespace orchestrator::router
