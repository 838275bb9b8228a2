// The sandbox escape suite, network half: a worker in a whole mesh on a real
// PostgreSQL, in a real bubblewrap sandbox with its own network namespace,
// probing from inside (the scripted agent's "run: COMMAND" runs a shell
// command there, as a model's Bash tool would). Nothing on the host is
// reachable directly; the outside is reachable only through the mesh's
// egress proxy, only where the worker is allowed, and every connection is
// logged with the worker's id.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/agents/v1/agents.grpc.pb.h"
#include "tests/support/echo_http_server.h"
#include "tests/support/log_capture.h"
#include "tests/support/scripted_worker.h"
#include "tests/support/test_mesh.h"

namespace orchestrator::agents {
namespace {

namespace v1 = ::orchestrator::agents::v1;
using testing::EchoHttpServer;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using testing::TestMesh;

// Whether a TCP connection to 127.0.0.1:`port` succeeds from here (the host).
bool HostReaches(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  close(fd);
  return ok;
}

int PortOf(const std::string& address) {
  int port = 0;
  (void)absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port);
  return port;
}

class SandboxNetworkTest : public ::testing::Test {
 protected:
  SandboxNetworkTest()
      : mesh_("all",
              [this](MeshConfig& c) {
                // The operator lets every networked worker reach `allowed_`.
                c.agent_egress_allow = {allowed_.address()};
              }),
        stub_(v1::AgentService::NewStub(mesh_.channel())) {
    std::tie(user_id_, token_) = mesh_.NewUser("mallory");
  }

  // A ready scripted worker with the given network mode.
  v1::Worker StartWorker(v1::NetworkMode mode) {
    v1::StartWorkerRequest req;
    req.mutable_config()->set_network_mode(mode);
    return testing::ScriptedWorkers(stub_.get(), token_).StartReady(req);
  }

  // Runs `command` with /bin/sh inside the worker's sandbox; "exit N\n" and
  // what it printed.
  std::string Inside(const std::string& worker_id, const std::string& command) {
    return testing::ScriptedWorkers(stub_.get(), token_).Run(worker_id, command).summary();
  }

  // A python3 probe: for each port, "PORT reached" or "PORT unreachable".
  static std::string Probe(const std::vector<int>& ports) {
    std::string list;
    for (int p : ports) absl::StrAppend(&list, list.empty() ? "" : ",", p);
    return absl::StrCat(
        "python3 -c 'import socket\nfor p in [", list,
        "]:\n  try:\n    socket.create_connection((\"127.0.0.1\", p), 3).close(); "
        "print(p, \"reached\")\n  except OSError as e:\n    print(p, \"unreachable\", e)'");
  }

  EchoHttpServer allowed_;      // on the operator's allowlist
  EchoHttpServer not_allowed_;  // on no list
  testing::LogCapture log_;
  TestMesh mesh_;
  std::unique_ptr<v1::AgentService::Stub> stub_;
  std::string user_id_, token_;
};

TEST_F(SandboxNetworkTest, NothingOnTheHostIsReachableDirectlyFromInside) {
  const char* pg = std::getenv("PGPORT");
  ASSERT_NE(pg, nullptr) << "run under pg_virtualenv -t (PostgreSQL on TCP)";
  const int pg_port = std::atoi(pg);
  const int mesh_port = PortOf(mesh_.address());
  for (v1::NetworkMode mode : {v1::NETWORK_MODE_OPEN, v1::NETWORK_MODE_ISOLATED}) {
    SCOPED_TRACE(v1::NetworkMode_Name(mode));
    v1::Worker w = StartWorker(mode);
    const std::string out =
        Inside(w.id(), Probe({pg_port, mesh_port, allowed_.port(), not_allowed_.port()}));
    for (int port : {pg_port, mesh_port, allowed_.port(), not_allowed_.port()}) {
      EXPECT_THAT(out, HasSubstr(absl::StrCat(port, " unreachable"))) << out;
      EXPECT_THAT(out, Not(HasSubstr(absl::StrCat(port, " reached")))) << out;
    }
    // Not even bypassing the proxy on purpose.
    const std::string direct = Inside(
        w.id(), absl::StrCat("curl -sS --noproxy '*' --max-time 5 http://", allowed_.address()));
    EXPECT_THAT(direct, Not(StartsWith("exit 0"))) << direct;
  }
  EXPECT_EQ(allowed_.accepted(), 0);
  EXPECT_EQ(not_allowed_.accepted(), 0);
  // While from the host, every one of them answers.
  for (int port : {pg_port, mesh_port, allowed_.port(), not_allowed_.port()}) {
    EXPECT_TRUE(HostReaches(port)) << "port " << port << " should be reachable from the host";
  }
}

TEST_F(SandboxNetworkTest, TheProxyLetsThroughOnlyWhatTheWorkerIsAllowedAndLogsEveryConnection) {
  v1::Worker w = StartWorker(v1::NETWORK_MODE_OPEN);
  // Agents are told where the proxy is, and nothing bypasses it.
  const std::string env = Inside(w.id(), "echo \"[$HTTPS_PROXY][$HTTP_PROXY][$NO_PROXY]\"");
  EXPECT_THAT(env, ::testing::MatchesRegex(
                       "exit 0\n\\[http://127\\.0\\.0\\.1:[0-9]+\\]\\[http://127\\.0\\.0\\.1:[0-9]+"
                       "\\]\\[\\]\n"));

  // Allowed: the request arrives, in origin form, and the answer comes back.
  const std::string ok =
      Inside(w.id(), absl::StrCat("curl -sS --max-time 10 http://", allowed_.address(), "/hello"));
  EXPECT_THAT(ok, StartsWith("exit 0\nGET /hello HTTP/1.1")) << ok;
  EXPECT_EQ(allowed_.accepted(), 1);

  // Not on the list: 403, for plain HTTP and for a tunnel alike, and
  // nothing reaches the target.
  const std::string refused =
      Inside(w.id(), absl::StrCat("curl -s -o /dev/null -w '%{http_code}' --max-time 10 http://",
                                  not_allowed_.address(), "/"));
  EXPECT_THAT(refused, StartsWith("exit 0\n403")) << refused;
  const char* pg = std::getenv("PGPORT");
  const std::string pg_target = absl::StrCat("127.0.0.1:", pg != nullptr ? pg : "5432");
  const std::string tunnel = Inside(
      w.id(), absl::StrCat("curl -s -p -o /dev/null -w '%{http_connect}' --max-time 10 http://",
                           pg_target, "/"));
  EXPECT_THAT(tunnel, HasSubstr("\n403")) << tunnel;
  const std::string mesh_port = mesh_.address().substr(mesh_.address().rfind(':'));
  const std::string to_mesh = Inside(
      w.id(), absl::StrCat("curl -s -o /dev/null -w '%{http_code}' --max-time 10 http://127.0.0.1",
                           mesh_port, "/"));
  EXPECT_THAT(to_mesh, StartsWith("exit 0\n403")) << to_mesh;
  EXPECT_EQ(not_allowed_.accepted(), 0);

  // Every connection is in the log with the worker's id.
  const std::string logged = log_.text();
  EXPECT_THAT(logged, HasSubstr(absl::StrCat("egress worker=", w.id(),
                                             " target=", allowed_.address(), " allowed")));
  EXPECT_THAT(logged, HasSubstr(absl::StrCat("egress worker=", w.id(),
                                             " target=", not_allowed_.address(), " refused")));
  EXPECT_THAT(logged,
              HasSubstr(absl::StrCat("egress worker=", w.id(), " target=", pg_target, " refused")));
  EXPECT_THAT(logged, HasSubstr(absl::StrCat("egress worker=", w.id(), " target=127.0.0.1",
                                             mesh_port, " refused")));
}

TEST_F(SandboxNetworkTest, AnIsolatedWorkerHasNoProxyAndAnEndedWorkerNoSocket) {
  v1::Worker isolated = StartWorker(v1::NETWORK_MODE_ISOLATED);
  const std::string env = Inside(isolated.id(), "echo \"[$HTTPS_PROXY]\"; ls /run/orchestrator");
  EXPECT_THAT(env, HasSubstr("[]")) << env;
  EXPECT_THAT(env, Not(HasSubstr("egress"))) << env;
  const std::string out =
      Inside(isolated.id(), absl::StrCat("curl -sS --max-time 5 http://", allowed_.address()));
  EXPECT_THAT(out, Not(StartsWith("exit 0"))) << out;
  EXPECT_EQ(allowed_.accepted(), 0);

  // A stopped worker's socket is gone with it.
  v1::Worker open = StartWorker(v1::NETWORK_MODE_OPEN);
  const std::string socket =
      absl::StrCat(mesh_.config().agents_dir, "/egress/", open.id(), ".sock");
  EXPECT_EQ(access(socket.c_str(), F_OK), 0) << socket;
  v1::StopWorkerRequest stop;
  stop.set_worker_id(open.id());
  v1::StopWorkerResponse stopped;
  ASSERT_TRUE(stub_->StopWorker(TestMesh::Context(token_).get(), stop, &stopped).ok());
  EXPECT_NE(access(socket.c_str(), F_OK), 0) << socket;
}

}  // namespace
}  // namespace orchestrator::agents
