#include "services/infra/component.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/containers/docker_engine.h"
#include "services/common/crypto/secret_box.h"
#include "services/infra/adapters/http_route_probe.h"
#include "services/infra/adapters/openssh_shell.h"
#include "services/infra/adapters/release_sites.h"
#include "services/infra/api/infra_service.h"
#include "services/infra/peers/mesh_peers.h"
#include "services/infra/provisioning/provision_playbook.h"
#include "services/infra/store/pg_infra_store.h"
#include "services/jobs/engine/job_engine.h"
#include "services/jobs/engine/job_hooks.h"

// The flags this component reads (ReadFlags), wherever it is hosted.
ABSL_FLAG(std::string, local_port_range, "30000-32767",
          "FIRST-LAST: the ports the machine the mesh runs on (server \"local\") allocates to "
          "projects' services (below Linux's ephemeral range, 32768-60999)");
ABSL_FLAG(std::string, deploy_domain, "localhost",
          "projects are routed at <project>.<deploy_domain> (\"localhost\": on this machine "
          "only)");

namespace orchestrator::infra {
namespace {

// The periodic sweep of allocations whose project was deleted.
constexpr char kFreeOrphansJobKind[] = "infra.allocations.free_orphans";

// True when nothing on this machine listens on 127.0.0.1:`port` now.
bool LoopbackPortFree(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return free;
}

class InfraComponent final : public Component {
 public:
  static absl::StatusOr<std::unique_ptr<Component>> Build(ComponentContext& ctx) {
    auto self = std::unique_ptr<InfraComponent>(new InfraComponent());
    if (auto s = self->Init(ctx); !s.ok()) return s;
    return self;
  }

  ~InfraComponent() override { Stop(); }
  void BeginDrain(absl::Time deadline) override {
    if (service_ != nullptr) service_->EndLogStreams();
    if (engine_) engine_->BeginDrain(deadline);
  }
  void Stop() override {
    if (service_ != nullptr) service_->EndLogStreams();
    engine_.reset();
    if (followers_) followers_->Shutdown();
    if (executor_) executor_->Shutdown();
  }

 private:
  absl::Status Init(ComponentContext& ctx) {
    auto store = std::make_shared<PgInfraStore>(ctx.pool);
    // Servers' private keys are sealed like project secrets; without the
    // key, servers cannot be registered or provisioned (the rest works).
    std::shared_ptr<const SecretBox> keys;
    if (!ctx.config.secrets_key_file.empty()) {
      auto box = SecretBoxFromKeyFile("--secrets_key_file", ctx.config.secrets_key_file);
      if (!box.ok()) return box.status();
      keys = std::make_shared<const SecretBox>(*std::move(box));
    }
    auto servers = std::make_shared<ServerCatalog>(store, keys);
    auto local = servers->EnsureLocal(ctx.config.local_port_first, ctx.config.local_port_last,
                                      "--local_port_range");
    if (!local.ok()) return local.status();
    auto channel_to = ctx.channel_to;
    auto releases = std::make_shared<DeployServiceReleases>(
        [channel_to] { return deploy::v1::DeployService::NewStub(channel_to("deploy")); }, ctx.mesh,
        ctx.call_deadline);
    auto allocations = std::make_shared<PortAllocator>(
        store, servers,
        [](const v1::Server& server, int port) {
          return server.kind() != v1::SERVER_KIND_LOCAL || LoopbackPortFree(port);
        },
        ctx.config.deploy_domain, releases);
    containers::DockerEngineConfig engine_config;
    engine_config.url = ctx.config.container_engine_url;
    auto engine = containers::DockerEngine::FromConfig(engine_config);
    if (!engine.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--container_engine_socket: ", engine.status().message()));
    }
    auto shell = std::make_shared<OpenSshShell>();
    ProvisionerOptions provisioning;
    provisioning.playbook = ProvisionPlaybook();
    provisioning.job_ended = [this](const std::string& job_id) -> absl::StatusOr<bool> {
      auto job = engine_->store()->Get(job_id);
      if (job.status().code() == absl::StatusCode::kNotFound) return true;  // pruned
      if (!job.ok()) return job.status();
      return jobs::IsTerminal(job->state());
    };
    auto provisioner = std::make_shared<Provisioner>(store, keys, shell, shell, provisioning);

    // Releases are read on their servers: the local one, SSH ones through
    // a tunnel with the deploy user's login.
    ReleaseSite local_site;
    local_site.engine = *std::move(engine);
    local_site.route = std::make_shared<HttpRouteProbe>(ctx.config.router_listen);
    auto connections = std::make_shared<remote::ServerConnections>(
        [store, provisioner](const std::string&, const std::string& server_id)
            -> absl::StatusOr<v1::GetServerAccessResponse> {
          auto server = store->GetServer(server_id);
          if (!server.ok()) return server.status();
          return provisioner->DeployAccess(*server);
        },
        remote::ServerConnectionsOptions{});
    auto diagnostics = std::make_shared<ServiceDiagnostics>(
        releases,
        std::make_shared<ProjectServiceSecrets>(
            [channel_to] { return projects::v1::ProjectService::NewStub(channel_to("projects")); },
            ctx.mesh, ctx.call_deadline),
        std::make_shared<ConnectedReleaseSites>(std::move(local_site), connections),
        DiagnosticsOptions{});
    // Provision jobs and the reachability probe run on an engine of ours;
    // each provision holds a handler for as long as its playbook runs.
    engine_ = std::make_unique<jobs::JobEngine>(ctx.pool, ctx.config.database_url,
                                                jobs::JobEngine::OptionsOf(ctx.config, 4));
    engine_->worker().Register(kProvisionJobKind, [provisioner](jobs::JobContext& job) {
      return provisioner->Provision(job.job(), jobs::HooksOf(job));
    });
    engine_->worker().Register(kProbeServersJobKind, [provisioner](jobs::JobContext& job) {
      return provisioner->ProbeServers(jobs::HooksOf(job));
    });
    auto registry = std::make_shared<ProjectServiceRegistry>(
        [channel_to] { return projects::v1::ProjectService::NewStub(channel_to("projects")); },
        ctx.mesh, ctx.call_deadline);
    engine_->worker().Register(
        kFreeOrphansJobKind,
        [allocations, registry](jobs::JobContext&) -> absl::StatusOr<google::protobuf::Struct> {
          auto freed = allocations->FreeOrphans(*registry, absl::Now());
          if (!freed.ok()) return freed.status();
          google::protobuf::Struct result;
          (*result.mutable_fields())["allocations_freed"].set_number_value(*freed);
          return result;
        });
    if (auto s = engine_->Start(absl::FromChrono(ctx.call_deadline), "infra"); !s.ok()) return s;

    executor_ = std::make_shared<BoundedExecutor>(4, 256);
    LogStreamLimits limits;
    followers_ = std::make_shared<BoundedExecutor>(limits.max_following, limits.max_following);
    auto service = std::make_unique<InfraServiceImpl>(
        servers, allocations, diagnostics, provisioner, engine_->store(), ctx.project_visibility,
        executor_, followers_, limits);
    service_ = service.get();
    Serve(ctx.host, std::move(service), v1::InfraService::service_full_name());
    return absl::OkStatus();
  }

  std::unique_ptr<jobs::JobEngine> engine_;
  BoundedExecutorPtr executor_;
  BoundedExecutorPtr followers_;
  InfraServiceImpl* service_ = nullptr;  // owned by the Component base
};

absl::Status ReadFlags(MeshConfig& config) {
  const std::string range = absl::GetFlag(FLAGS_local_port_range);
  std::pair<std::string, std::string> parts = absl::StrSplit(range, absl::MaxSplits('-', 1));
  if (!absl::SimpleAtoi(parts.first, &config.local_port_first) ||
      !absl::SimpleAtoi(parts.second, &config.local_port_last) || config.local_port_first < 1024 ||
      config.local_port_last > 65535 || config.local_port_first > config.local_port_last) {
    return absl::InvalidArgumentError(
        "--local_port_range: FIRST-LAST within 1024-65535, FIRST <= LAST");
  }
  config.deploy_domain = absl::GetFlag(FLAGS_deploy_domain);
  std::string lowered = config.deploy_domain;
  if (lowered.empty() || lowered.size() > 200 ||
      lowered.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-.") != std::string::npos ||
      lowered.front() == '.' || lowered.back() == '.' || lowered.find("..") != std::string::npos) {
    return absl::InvalidArgumentError(
        "--deploy_domain: a lowercase DNS name, e.g. localhost or apps.example.com");
  }
  return absl::OkStatus();
}

}  // namespace

ComponentSpec Registration() {
  return {.name = "infra",
          .service = v1::InfraService::service_full_name(),
          .peers = {"projects", "deploy", "jobs"},
          .migrations = &db::InfraMigrations,
          .read_flags = &ReadFlags,
          .build = &InfraComponent::Build,
          .periodic_tasks = {{.id = kProbeServersJobKind,
                              .description = "checks that every SSH server answers: READY, or "
                                             "UNREACHABLE with the SSH error",
                              .job_kind = kProbeServersJobKind,
                              .interval = absl::Minutes(5)},
                             {.id = kFreeOrphansJobKind,
                              .description = "frees the port allocations of deleted projects",
                              .job_kind = kFreeOrphansJobKind,
                              .interval = absl::Minutes(10)}}};
}

}  // namespace orchestrator::infra
