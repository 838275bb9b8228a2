#include "services/agents/component.h"

#include <unistd.h>

#include <filesystem>
#include <set>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "orchestrator/admin/v1/admin.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "services/agents/api/agent_service.h"
#include "services/agents/api/sandbox_mesh_proxy.h"
#include "services/agents/egress/egress_proxy.h"
#include "services/agents/peers/admin_token_minter.h"
#include "services/agents/peers/project_secret_source.h"
#include "services/agents/runtime/kubernetes_runtime.h"
#include "services/agents/store/pg_worker_store.h"
#include "services/common/config/process.h"
#include "services/common/crypto/secret_box.h"
#include "spdlog/spdlog.h"

// The flags this component reads (ReadFlags), wherever it is hosted.
ABSL_FLAG(std::string, agents_dir, "",
          "agent workspaces and worker logs; empty: a directory under the system temp dir");
ABSL_FLAG(std::string, agent_runtime, "sandboxed",
          "sandboxed (bubblewrap), unsandboxed (agents run as plain processes: no isolation) or "
          "kubernetes (a Pod per worker; see --kubernetes_worker_image)");
ABSL_FLAG(std::string, kubernetes_worker_image, "",
          "--agent_runtime=kubernetes: the product image workers' Pods run orchestrator-runner "
          "from");
ABSL_FLAG(std::string, kubernetes_mesh_address, "",
          "--agent_runtime=kubernetes: host:port workers' Pods reach the agents component on");
ABSL_FLAG(std::string, kubernetes_workers_listen, "0.0.0.0:50070",
          "--agent_runtime=kubernetes: host:port the workers' Pods reach the mesh on (a proxy "
          "to every component, like the sandboxes' socket); --kubernetes_mesh_address names it");
ABSL_FLAG(std::string, kubernetes_mesh_labels, "app.kubernetes.io/name=orchestrator",
          "--agent_runtime=kubernetes: KEY=VALUE,... of the mesh's Pods: the only Pods workers "
          "may connect to (their NetworkPolicy)");
ABSL_FLAG(std::string, kubernetes_workspace_size, "1Gi",
          "--agent_runtime=kubernetes: each workspace's PersistentVolumeClaim");
ABSL_FLAG(
    std::string, kubernetes_storage_class, "",
    "--agent_runtime=kubernetes: the workspaces' storage class; empty: the cluster's default");
ABSL_FLAG(std::string, agent_bin_dir, "",
          "directory holding orchestrator-runner and orchestrator; empty: orchestratord's own");
ABSL_FLAG(std::string, agent_tool_dirs, "",
          "comma-separated installs of agent CLIs (node_modules), visible read-only to agents");
ABSL_FLAG(std::string, agent_egress_allow, "",
          "host:port,... every agent with network may reach through the egress proxy, besides "
          "its model API (from --session_agent_env) and the registries its capabilities name");
ABSL_FLAG(absl::Duration, agent_connect_timeout, absl::Seconds(30),
          "a worker whose runner has not connected by then is FAILED");

namespace orchestrator::agents {
namespace {

// Workers as Pods, from the mesh's config.
absl::StatusOr<std::shared_ptr<WorkerRuntime>> KubernetesRuntimeOf(const MeshConfig& config) {
  if (config.kubernetes_worker_image.empty()) {
    return absl::InvalidArgumentError(
        "--kubernetes_worker_image: the product image is needed with --agent_runtime=kubernetes");
  }
  const auto colon = config.kubernetes_mesh_address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(config.kubernetes_mesh_address.substr(colon + 1), &port) || port <= 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--kubernetes_mesh_address: '", config.kubernetes_mesh_address,
                     "' is not host:port (where workers' Pods reach the agents component)"));
  }
  auto cluster = config.kubeconfig.empty() ? kubernetes::InClusterConfig()
                                           : kubernetes::KubeconfigConfig(config.kubeconfig);
  if (!cluster.ok()) return cluster.status();
  auto client = kubernetes::KubeClient::Connect(*std::move(cluster));
  if (!client.ok()) return client.status();
  KubernetesRuntimeOptions options;
  options.image = config.kubernetes_worker_image;
  options.mesh_address = config.kubernetes_mesh_address;
  options.mesh_pod_labels = config.kubernetes_mesh_labels;
  options.mesh_port = port;
  options.workspace_size = config.kubernetes_workspace_size;
  options.storage_class = config.kubernetes_storage_class;
  return std::make_shared<KubernetesRuntime>(
      std::shared_ptr<kubernetes::KubeClient>(*std::move(client)), std::move(options));
}

// Where workers run and what their sandboxes see, from the mesh's config.
absl::StatusOr<SpawnerOptions> SpawnerOptionsOf(const MeshConfig& config) {
  SpawnerOptions options;
  options.root_dir = config.agents_dir;
  if (options.root_dir.empty()) {
    options.root_dir =
        (std::filesystem::temp_directory_path() / NewId("orchestrator-agents-")).string();
  }
  std::error_code ec;
  std::filesystem::create_directories(options.root_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("--agents_dir: cannot create '", options.root_dir, "': ", ec.message()));
  }
  options.bin_dir = config.agent_bin_dir.empty() ? OwnBinaryDir() : config.agent_bin_dir;
  for (const auto& dir : config.agent_tool_dirs) {
    // Bound into sandboxes at the same path: it must be absolute.
    options.tool_dirs.push_back(std::filesystem::absolute(dir).lexically_normal().string());
  }
  // No library directories: the runner and the CLI are linked without the
  // mesh's own shared libraries (orchestrator_static_executable), so nothing
  // of the build or the install but those two files is bound in.
  // For the PO sessions' workers only, and never in a worker's record.
  options.operator_environment = config.session_agent_env;
  options.unsandboxed = config.agent_runtime == "unsandboxed";
  if (config.agent_runtime == "kubernetes") {
    auto runtime = KubernetesRuntimeOf(config);
    if (!runtime.ok()) return runtime.status();
    options.runtime = *std::move(runtime);
    options.runtime_kind = v1::WORKER_RUNTIME_KUBERNETES;
  }
  options.connect_timeout = absl::FromChrono(config.agent_connect_timeout);
  // Sandboxes reach the mesh on a unix socket bound into them.
  options.mesh_socket = options.root_dir + "/mesh.sock";
  if (options.runtime != nullptr) {
    // Workers run elsewhere: no bubblewrap needed here.
  } else if (options.unsandboxed) {
    spdlog::warn(
        "agents: --agent_runtime=unsandboxed: agents run as plain processes, without isolation");
  } else if (auto bwrap = FindBwrap(); !bwrap.ok()) {
    return bwrap.status();
  }
  // Sandboxes reach the outside only through the egress proxy: the model
  // APIs the operator configured, and what each worker is granted.
  auto env = [&](const char* name) {
    auto it = config.session_agent_env.find(name);
    return it == config.session_agent_env.end() ? std::string() : it->second;
  };
  options.egress.anthropic_base_url = env("ANTHROPIC_BASE_URL");
  options.egress.openai_base_url = env("OPENAI_BASE_URL");
  for (const char* name : {"ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"}) {
    if (env(name).empty()) continue;
    if (auto t = EgressTargetOfUrl(env(name)); !t.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--session_agent_env: ", name, ": ", t.status().message()));
    }
  }
  for (const auto& target : config.agent_egress_allow) {
    if (auto t = ParseEgressTarget(target); !t.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--agent_egress_allow: ", t.status().message()));
    }
    options.egress.extra.push_back(target);
  }
  return options;
}

class AgentsComponent final : public Component {
 public:
  AgentsComponent(ComponentContext& ctx, const SpawnerOptions& options,
                  std::unique_ptr<EgressProxy> egress)
      : minter_(std::make_shared<AdminTokenMinter>(
            [channel = ctx.channel_to] {
              return admin::v1::AdminService::NewStub(channel("admin"));
            },
            ctx.mesh, ctx.call_deadline)),
        spawner_(std::make_shared<WorkerSpawner>(
            options, std::make_shared<PgWorkerStore>(ctx.pool), minter_,
            std::make_shared<ProjectSecretSource>(
                [channel = ctx.channel_to] {
                  return projects::v1::ProjectService::NewStub(channel("projects"));
                },
                ctx.mesh, ctx.call_deadline),
            std::shared_ptr<EgressProxy>(std::move(egress)))),
        mesh_socket_(options.mesh_socket),
        workers_listen_(options.runtime_kind == v1::WORKER_RUNTIME_KUBERNETES
                            ? ctx.config.kubernetes_workers_listen
                            : ""),
        components_(ctx.components.begin(), ctx.components.end()),
        channel_to_(ctx.channel_to) {
    Serve(ctx.host,
          std::make_unique<AgentServiceImpl>(spawner_, ctx.executor, ctx.project_visibility),
          v1::AgentService::service_full_name());
    Serve(ctx.host, std::make_unique<RunnerServiceImpl>(spawner_, ctx.executor),
          v1::RunnerService::service_full_name());
  }
  ~AgentsComponent() override { spawner_->Shutdown(); }

  // Sandboxes reach the mesh through the proxy on their socket, once the
  // components it forwards to can be reached.
  void Start() override {
    auto proxy = SandboxMeshProxy::Start(mesh_socket_, workers_listen_, components_, channel_to_);
    if (!proxy.ok()) {
      spdlog::error("agents: {}; workers cannot reach the mesh", proxy.status().ToString());
      return;
    }
    proxy_ = *std::move(proxy);
  }

  absl::Status Recover() {
    if (auto s = spawner_->Recover(); !s.ok()) return s;
    spawner_->StartMonitor();
    return absl::OkStatus();
  }

  // Workers before the gRPC drain: their runners' streams would otherwise
  // hold it to its deadline, and they end STOPPED for the right reason.
  void Drain(absl::Time deadline) override {
    spawner_->Shutdown();
    // Their tokens revoked while AdminService can still be reached (briefly:
    // with admin gone too, the next start revokes them, see Recover).
    minter_->WaitIdle(std::min(deadline, absl::Now() + absl::Seconds(2)));
    if (proxy_) proxy_->Shutdown(absl::ToChronoTime(deadline));
  }

 private:
  std::shared_ptr<AdminTokenMinter> minter_;
  std::shared_ptr<WorkerSpawner> spawner_;
  const std::string mesh_socket_;
  const std::string workers_listen_;  // for workers in Pods; "" when none run there
  const std::set<std::string> components_;
  std::function<std::shared_ptr<grpc::Channel>(const std::string&)> channel_to_;
  std::unique_ptr<SandboxMeshProxy> proxy_;
};

absl::Status ReadFlags(MeshConfig& config) {
  config.agents_dir = absl::GetFlag(FLAGS_agents_dir);
  config.agent_runtime = absl::GetFlag(FLAGS_agent_runtime);
  config.agent_bin_dir = absl::GetFlag(FLAGS_agent_bin_dir);
  for (absl::string_view d :
       absl::StrSplit(absl::GetFlag(FLAGS_agent_tool_dirs), ',', absl::SkipEmpty())) {
    config.agent_tool_dirs.emplace_back(d);
  }
  for (absl::string_view t :
       absl::StrSplit(absl::GetFlag(FLAGS_agent_egress_allow), ',', absl::SkipEmpty())) {
    config.agent_egress_allow.emplace_back(t);
  }
  config.agent_connect_timeout = Millis(absl::GetFlag(FLAGS_agent_connect_timeout));
  config.kubernetes_worker_image = absl::GetFlag(FLAGS_kubernetes_worker_image);
  config.kubernetes_mesh_address = absl::GetFlag(FLAGS_kubernetes_mesh_address);
  config.kubernetes_workers_listen = absl::GetFlag(FLAGS_kubernetes_workers_listen);
  for (absl::string_view pair :
       absl::StrSplit(absl::GetFlag(FLAGS_kubernetes_mesh_labels), ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
    if (kv.first.empty() || kv.second.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--kubernetes_mesh_labels: '", pair, "' is not KEY=VALUE"));
    }
    config.kubernetes_mesh_labels.insert(std::move(kv));
  }
  config.kubernetes_workspace_size = absl::GetFlag(FLAGS_kubernetes_workspace_size);
  config.kubernetes_storage_class = absl::GetFlag(FLAGS_kubernetes_storage_class);
  return absl::OkStatus();
}

}  // namespace

ComponentSpec Registration() {
  return {.name = "agents",
          .service = v1::AgentService::service_full_name(),
          .peers = {"admin", "projects"},
          .migrations = &db::AgentsMigrations,
          .read_flags = &ReadFlags,
          .build = [](ComponentContext& ctx) -> absl::StatusOr<std::unique_ptr<Component>> {
            auto options = SpawnerOptionsOf(ctx.config);
            if (!options.ok()) return options.status();
            auto egress = EgressProxy::Start({.socket_dir = options->root_dir + "/egress"});
            if (!egress.ok()) return egress.status();
            auto agents = std::make_unique<AgentsComponent>(ctx, *options, *std::move(egress));
            if (auto s = agents->Recover(); !s.ok()) return s;
            return agents;
          }};
}

}  // namespace orchestrator::agents
