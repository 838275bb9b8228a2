// orchestratord: hosts any subset of the mesh's components in one process.
#include <csignal>
#include <cstdio>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/config/mesh_config.h"
#include "services/common/config/process.h"
#include "services/common/logging/logging.h"
#include "services/orchestratord/components.h"
#include "services/orchestratord/mesh.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "gRPC address: host:port (port 0 picks one) or unix:/path");
ABSL_FLAG(std::string, services, "all", "components to host: all, or a comma-separated list");
ABSL_FLAG(std::string, database_url, "", "libpq conninfo; empty uses PGHOST, PGPORT, PGUSER, ...");
ABSL_FLAG(std::string, mesh_credential_file, "",
          "file holding the mesh's shared secret (first line, 32+ characters): the same for every "
          "process of one install; required unless this process hosts every component");
ABSL_FLAG(bool, list_components, false,
          "print the mesh's components (name, gRPC service, peers it calls) and exit");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn or error");
ABSL_FLAG(absl::Duration, drain_deadline, absl::Seconds(10),
          "how long calls in flight may finish on SIGTERM");
ABSL_FLAG(absl::Duration, call_deadline, absl::Seconds(10), "deadline of calls between components");
ABSL_FLAG(absl::Duration, token_cache_ttl, absl::Seconds(5),
          "how long a verified token is remembered");
ABSL_FLAG(std::string, rate_limit_per_token, "50/100",
          "calls per second/burst one token may make (\"0\" = unlimited)");
ABSL_FLAG(std::string, rate_limit_per_user, "100/200",
          "calls per second/burst one user's tokens may make together (\"0\" = unlimited)");
ABSL_FLAG(int, executor_threads, 8, "threads running RPC work off the gRPC threads");
ABSL_FLAG(int, executor_queue, 4096, "queued RPC work before calls are refused");
ABSL_FLAG(int, db_pool_size, 8, "PostgreSQL connections");
ABSL_FLAG(std::string, kubeconfig, "",
          "Kubernetes' API for the parts that use it (--agent_runtime=kubernetes): a kubeconfig "
          "file in JSON (`kubectl config view --raw --flatten -o json`); empty: in-cluster, "
          "with the Pod's service account");

namespace {

using orchestrator::Millis;

absl::StatusOr<orchestrator::MeshConfig> ConfigFromFlags() {
  orchestrator::MeshConfig c;
  c.listen = absl::GetFlag(FLAGS_listen);
  if (auto s = orchestrator::ParseServices(absl::GetFlag(FLAGS_services),
                                           orchestrator::ComponentNames(), &c.services);
      !s.ok()) {
    return s;
  }
  c.database_url = absl::GetFlag(FLAGS_database_url);
  c.mesh_credential_file = absl::GetFlag(FLAGS_mesh_credential_file);
  c.drain_deadline = Millis(absl::GetFlag(FLAGS_drain_deadline));
  c.call_deadline = Millis(absl::GetFlag(FLAGS_call_deadline));
  c.token_cache_ttl = Millis(absl::GetFlag(FLAGS_token_cache_ttl));
  if (auto s = orchestrator::ParseRateLimit("--rate_limit_per_token",
                                            absl::GetFlag(FLAGS_rate_limit_per_token),
                                            &c.rate_limit_per_token);
      !s.ok()) {
    return s;
  }
  if (auto s = orchestrator::ParseRateLimit("--rate_limit_per_user",
                                            absl::GetFlag(FLAGS_rate_limit_per_user),
                                            &c.rate_limit_per_user);
      !s.ok()) {
    return s;
  }
  c.executor_threads = absl::GetFlag(FLAGS_executor_threads);
  c.executor_queue = absl::GetFlag(FLAGS_executor_queue);
  c.db_pool_size = absl::GetFlag(FLAGS_db_pool_size);
  c.kubeconfig = absl::GetFlag(FLAGS_kubeconfig);
  // Each component reads the flags it declares (in its component.cc).
  for (const auto& component : orchestrator::Components()) {
    if (!component.read_flags) continue;
    if (auto s = component.read_flags(c); !s.ok()) return s;
  }
  c.remote_addrs = orchestrator::RemoteAddrsFromFlags();
  if (auto s = c.Validate(orchestrator::ComponentNames()); !s.ok()) return s;
  return c;
}

}  // namespace

// One line per component: name, its gRPC service, the peers it calls
// (comma-separated, "-" for none). The Helm chart and the split tests are
// checked against it.
void ListComponents() {
  for (const auto& c : orchestrator::Components()) {
    std::printf("%s\t%s\t%s\n", c.name.c_str(), c.service.c_str(),
                c.peers.empty() ? "-" : absl::StrJoin(c.peers, ",").c_str());
  }
}

int main(int argc, char** argv) {
  orchestrator::ParseCommandLineAndEnvironment(
      argc, argv, "orchestratord --services=all|<list> [--listen=host:port] ...");
  if (absl::GetFlag(FLAGS_list_components)) {
    ListComponents();
    return 0;
  }
  if (auto s = orchestrator::InitLogging(absl::GetFlag(FLAGS_log_level)); !s.ok()) {
    std::fprintf(stderr, "orchestratord: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  auto config = ConfigFromFlags();
  if (!config.ok()) {
    std::fprintf(stderr, "orchestratord: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }

  const orchestrator::TerminationSignals signals;

  auto mesh = orchestrator::Mesh::Create(*config);
  if (!mesh.ok()) {
    spdlog::critical("cannot start: {}", mesh.status().ToString());
    return 1;
  }
  if (auto s = (*mesh)->Start(); !s.ok()) {
    spdlog::critical("cannot start: {}", s.ToString());
    return 1;
  }
  spdlog::info("orchestratord ready address={} services={}", (*mesh)->address(),
               absl::StrJoin(config->services, ","));

  std::thread waiter([&] {
    spdlog::info("signal={} shutting down", signals.Wait());
    (*mesh)->Shutdown();
  });
  (*mesh)->Wait();
  waiter.join();
  return 0;
}
