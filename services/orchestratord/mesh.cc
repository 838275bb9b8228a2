#include "services/orchestratord/mesh.h"

#include <fcntl.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "orchestrator/agents/v1/agents.grpc.pb.h"
#include "orchestrator/agents/v1/runner.grpc.pb.h"
#include "orchestrator/deploy/v1/deploy.grpc.pb.h"
#include "orchestrator/engineering/v1/engineering.grpc.pb.h"
#include "orchestrator/infra/v1/infra.grpc.pb.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "orchestrator/scaffolder/v1/scaffolder.grpc.pb.h"
#include "orchestrator/scheduler/v1/scheduler.grpc.pb.h"
#include "orchestrator/sessions/v1/sessions.grpc.pb.h"
#include "services/admin/api/admin_service.h"
#include "services/admin/api/remote_token_verifier.h"
#include "services/admin/store/pg_user_store.h"
#include "services/agents/api/agent_service.h"
#include "services/agents/egress/egress_proxy.h"
#include "services/agents/store/pg_worker_store.h"
#include "services/common/crypto/secret_box.h"
#include "services/common/db/migrations.h"
#include "services/common/peers/project_visibility.h"
#include "services/jobs/api/job_service.h"
#include "services/jobs/engine/demo_handlers.h"
#include "services/jobs/engine/worker.h"
#include "services/projects/api/project_service.h"
#include "services/projects/store/pg_project_store.h"
#include "services/sessions/api/session_service.h"
#include "services/sessions/store/pg_session_store.h"
#include "spdlog/spdlog.h"

namespace orchestrator {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view flag) {
  std::ifstream in(path);
  if (!in)
    return absl::FailedPreconditionError(absl::StrCat("--", flag, ": cannot read '", path, "'"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// A component whose contract exists but whose implementation is not built
// yet: reflection lists it, the interceptor still authenticates its calls,
// and every RPC answers UNIMPLEMENTED.
// Workers' agent tokens, minted and revoked by the user directory hosted in
// the same process: a token acts for the user who started the worker and
// holds only the grants the worker was given.
class DirectoryTokenMinter final : public agents::TokenMinter {
 public:
  explicit DirectoryTokenMinter(std::shared_ptr<admin::UserDirectory> directory)
      : directory_(std::move(directory)) {}
  absl::StatusOr<Minted> Mint(const Principal& caller, const std::vector<std::string>& grants,
                              const std::string& description) override {
    admin::v1::CreateTokenRequest req;
    req.set_user_id(caller.user_id);
    req.set_kind(admin::v1::TOKEN_KIND_AGENT);
    req.set_description(description);
    for (const auto& g : grants) req.add_permissions(g);
    auto created = directory_->CreateToken(caller, req);
    if (!created.ok()) return created.status();
    return Minted{created->token().id(), created->value()};
  }
  void Revoke(const std::string& token_id) override {
    Principal mesh;
    mesh.kind = PrincipalKind::kMesh;
    mesh.admin = true;
    admin::v1::RevokeTokenRequest req;
    req.set_token_id(token_id);
    if (auto r = directory_->RevokeToken(mesh, req); !r.ok()) {
      spdlog::warn("agents: token {} not revoked: {}", token_id, r.status().ToString());
    }
  }

 private:
  std::shared_ptr<admin::UserDirectory> directory_;
};

// Project secrets granted to workers by name, from the catalog hosted in
// the same process.
class CatalogSecretSource final : public agents::SecretSource {
 public:
  explicit CatalogSecretSource(std::shared_ptr<projects::ProjectCatalog> catalog)
      : catalog_(std::move(catalog)) {}
  absl::StatusOr<std::string> Reveal(const Principal& caller, const std::string& project_id,
                                     const std::string& name) override {
    return catalog_->RevealSecret(caller, project_id, name);
  }

 private:
  std::shared_ptr<projects::ProjectCatalog> catalog_;
};

std::string OwnBinaryDir() {
  char path[4096];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return ".";
  std::string p(path, static_cast<size_t>(n));
  return p.substr(0, p.rfind('/'));
}

template <typename Service>
void HostContractOnly(std::vector<std::unique_ptr<grpc::Service>>& services, ServiceHost& host) {
  auto service = std::make_unique<typename Service::CallbackService>();
  host.Register(service.get(), Service::service_full_name());
  services.push_back(std::move(service));
}

}  // namespace

Mesh::Mesh(const MeshConfig& config)
    : config_(config),
      host_(HostOptions{.listen = config.listen,
                        .drain_deadline = config.drain_deadline,
                        .rate_limits = {.per_token = {config.rate_limit_per_token.first,
                                                      config.rate_limit_per_token.second},
                                        .per_user = {config.rate_limit_per_user.first,
                                                     config.rate_limit_per_user.second}}}) {}

Mesh::~Mesh() {
  Shutdown();
  if (executor_) executor_->Shutdown();
}

absl::StatusOr<std::unique_ptr<Mesh>> Mesh::Create(const MeshConfig& config) {
  if (auto s = config.Validate(); !s.ok()) return s;
  std::unique_ptr<Mesh> mesh(new Mesh(config));
  if (auto s = mesh->Build(); !s.ok()) return s;
  return mesh;
}

std::shared_ptr<grpc::Channel> Mesh::ChannelTo(const std::string& component) {
  if (config_.Hosts(component)) return host_.InProcessChannel();
  auto& channel = remote_channels_[component];
  if (!channel) {
    channel =
        grpc::CreateChannel(config_.remote_addrs.at(component), grpc::InsecureChannelCredentials());
  }
  return channel;
}

absl::Status Mesh::Build() {
  executor_ = std::make_shared<BoundedExecutor>(config_.executor_threads, config_.executor_queue);
  pool_ = std::make_shared<db::Pool>(db::PoolOptions{config_.database_url, config_.db_pool_size});

  std::shared_ptr<admin::UserDirectory> directory;
  if (config_.Hosts("admin")) {
    if (auto s = db::ApplyMigrations(*pool_, db::AdminMigrations()); !s.ok()) return s;
    directory = std::make_shared<admin::UserDirectory>(std::make_shared<admin::PgUserStore>(pool_));
    auto service = std::make_unique<admin::AdminServiceImpl>(directory, executor_);
    host_.Register(service.get(), admin::v1::AdminService::service_full_name());
    services_.push_back(std::move(service));
    parts_.push_back(directory);

    auto bootstrapped = directory->Bootstrap(
        [this](const std::string& token) { return WriteBootstrapToken(token); });
    if (!bootstrapped.ok()) return bootstrapped.status();
  }
  // Verifying tokens: the directory itself when hosted here (asking
  // ourselves over the channel would recurse), else AdminService remotely.
  TokenVerifierPtr source = directory;
  if (!directory) {
    source = std::make_shared<admin::RemoteTokenVerifier>(
        admin::v1::AdminService::NewStub(ChannelTo("admin")), config_.call_deadline);
  }
  verifier_ = std::make_shared<CachingTokenVerifier>(source, config_.token_cache_ttl);
  if (directory) directory->OnCredentialsChanged([v = verifier_.get()] { v->ForgetAll(); });
  host_.SetTokenVerifier(verifier_);

  if (config_.Hosts("projects")) {
    if (auto s = db::ApplyMigrations(*pool_, db::ProjectsMigrations()); !s.ok()) return s;
    auto key = ReadFile(config_.secrets_key_file, "secrets_key_file");
    if (!key.ok()) return key.status();
    auto box = SecretBox::FromBase64Key(*key);
    if (!box.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--secrets_key_file: ", box.status().message()));
    }
    auto catalog = std::make_shared<projects::ProjectCatalog>(
        std::make_shared<projects::PgProjectStore>(pool_), std::move(*box));
    auto service = std::make_unique<projects::ProjectServiceImpl>(catalog, executor_);
    host_.Register(service.get(), projects::v1::ProjectService::service_full_name());
    services_.push_back(std::move(service));
    parts_.push_back(catalog);
    catalog_ = catalog;
  }

  // Project ids other components' requests name are checked with
  // ProjectService, as the caller; without it they are refused.
  ProjectVisibilityPtr project_visibility;
  if (config_.Hosts("projects") || config_.remote_addrs.contains("projects")) {
    project_visibility = std::make_shared<RemoteProjectVisibility>(
        [this] { return projects::v1::ProjectService::NewStub(ChannelTo("projects")); },
        config_.call_deadline);
  }

  if (config_.Hosts("jobs")) {
    if (auto s = db::ApplyMigrations(*pool_, db::JobsMigrations()); !s.ok()) return s;
    auto store = std::make_shared<jobs::PgJobStore>(pool_);
    auto hub = std::make_shared<jobs::JobEventHub>(config_.database_url, pool_);
    jobs::WorkerOptions options;
    options.concurrency = config_.job_concurrency;
    options.lease = absl::FromChrono(config_.job_lease);
    options.heartbeat = options.lease / 3;
    // Orphaned jobs run again within the lease and a second.
    options.reap = std::min(options.lease / 4, absl::Seconds(1));
    options.limits.per_owner.assign(config_.job_owner_limits.begin(),
                                    config_.job_owner_limits.end());
    auto worker = std::make_shared<jobs::Worker>(store, hub.get(), options);
    if (config_.demo_jobs) jobs::RegisterDemoHandlers(*worker);
    jobs::JobServiceOptions service_options{config_.demo_jobs};
    service_options.projects = project_visibility;
    auto service = std::make_unique<jobs::JobServiceImpl>(
        std::make_shared<jobs::JobBoard>(store), store, hub.get(), executor_, service_options);
    host_.Register(service.get(), jobs::v1::JobService::service_full_name());
    services_.push_back(std::move(service));
    hub->Start();
    // Serving before the hub listens would let watchers miss events.
    if (!hub->WaitUntilListening(absl::FromChrono(config_.call_deadline))) {
      hub->Stop();
      return absl::UnavailableError("jobs: cannot LISTEN for job events on the database");
    }
    worker->Start();
    // The job drain runs alongside the gRPC drain; watchers need the hub
    // until both are over.
    stop_jobs_ = [worker](absl::Time deadline) { worker->Stop(deadline - absl::Now()); };
    stop_job_events_ = [hub] { hub->Stop(); };
    job_hub_ = hub;
    job_worker_ = worker;
  }
  if (config_.Hosts("agents")) {
    if (!directory) {
      return absl::FailedPreconditionError(
          "agents must be hosted with admin in one process (it mints the workers' tokens)");
    }
    if (auto s = db::ApplyMigrations(*pool_, db::AgentsMigrations()); !s.ok()) return s;
    agents::SpawnerOptions options;
    options.root_dir = config_.agents_dir;
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
    options.bin_dir = config_.agent_bin_dir.empty() ? OwnBinaryDir() : config_.agent_bin_dir;
    for (const auto& dir : config_.agent_tool_dirs) {
      // Bound into sandboxes at the same path: it must be absolute.
      options.tool_dirs.push_back(std::filesystem::absolute(dir).lexically_normal().string());
    }
    // No library directories: the runner and the CLI are linked without
    // the mesh's own shared libraries (orchestrator_static_executable), so
    // nothing of the build or the install but those two files is bound in.
    // For the PO sessions' workers only, and never in a worker's record.
    options.operator_environment = config_.session_agent_env;
    options.unsandboxed = config_.agent_runtime == "unsandboxed";
    options.connect_timeout = absl::FromChrono(config_.agent_connect_timeout);
    // Sandboxes reach the mesh on a unix socket bound into them.
    options.mesh_socket = options.root_dir + "/mesh.sock";
    ::unlink(options.mesh_socket.c_str());
    host_.AlsoListen("unix:" + options.mesh_socket);
    if (options.unsandboxed) {
      spdlog::warn(
          "agents: --agent_runtime=unsandboxed: agents run as plain processes, "
          "without isolation");
    } else if (auto bwrap = agents::FindBwrap(); !bwrap.ok()) {
      return bwrap.status();
    }
    // Sandboxes reach the outside only through the egress proxy: the model
    // APIs the operator configured, and what each worker is granted.
    auto env = [&](const char* name) {
      auto it = config_.session_agent_env.find(name);
      return it == config_.session_agent_env.end() ? std::string() : it->second;
    };
    options.egress.anthropic_base_url = env("ANTHROPIC_BASE_URL");
    options.egress.openai_base_url = env("OPENAI_BASE_URL");
    for (const char* name : {"ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"}) {
      if (env(name).empty()) continue;
      if (auto t = agents::EgressTargetOfUrl(env(name)); !t.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--session_agent_env: ", name, ": ", t.status().message()));
      }
    }
    for (const auto& target : config_.agent_egress_allow) {
      if (auto t = agents::ParseEgressTarget(target); !t.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--agent_egress_allow: ", t.status().message()));
      }
      options.egress.extra.push_back(target);
    }
    auto egress = agents::EgressProxy::Start({.socket_dir = options.root_dir + "/egress"});
    if (!egress.ok()) return egress.status();
    auto spawner = std::make_shared<agents::WorkerSpawner>(
        options, std::make_shared<agents::PgWorkerStore>(pool_),
        std::make_shared<DirectoryTokenMinter>(directory),
        catalog_ ? std::make_shared<CatalogSecretSource>(
                       std::static_pointer_cast<projects::ProjectCatalog>(catalog_))
                 : nullptr,
        std::shared_ptr<agents::EgressProxy>(std::move(*egress)));
    if (auto s = spawner->Recover(); !s.ok()) return s;
    spawner->StartMonitor();
    auto service =
        std::make_unique<agents::AgentServiceImpl>(spawner, executor_, project_visibility);
    host_.Register(service.get(), agents::v1::AgentService::service_full_name());
    services_.push_back(std::move(service));
    auto runner = std::make_unique<agents::RunnerServiceImpl>(spawner, executor_);
    host_.Register(runner.get(), agents::v1::RunnerService::service_full_name());
    services_.push_back(std::move(runner));
    stop_agents_ = [spawner] { spawner->Shutdown(); };
    spawner_ = spawner;
  }
  if (config_.Hosts("sessions")) {
    if (auto s = BuildSessions(); !s.ok()) return s;
  }
  if (config_.Hosts("scaffolder"))
    HostContractOnly<scaffolder::v1::ScaffolderService>(services_, host_);
  if (config_.Hosts("engineering")) {
    HostContractOnly<engineering::v1::EngineeringService>(services_, host_);
  }
  if (config_.Hosts("deploy")) HostContractOnly<deploy::v1::DeployService>(services_, host_);
  if (config_.Hosts("infra")) HostContractOnly<infra::v1::InfraService>(services_, host_);
  if (config_.Hosts("scheduler"))
    HostContractOnly<scheduler::v1::SchedulerService>(services_, host_);
  return absl::OkStatus();
}

absl::Status Mesh::BuildSessions() {
  auto spawner = std::static_pointer_cast<agents::WorkerSpawner>(spawner_);
  if (!spawner) {
    return absl::FailedPreconditionError(
        "sessions must be hosted with agents in one process (it drives the PO workers)");
  }
  if (auto s = db::ApplyMigrations(*pool_, db::SessionsMigrations()); !s.ok()) return s;
  sessions::SessionManager::Options options;
  const std::map<std::string, agents::v1::AgentType> agents_by_name = {
      {"scripted", agents::v1::AGENT_TYPE_SCRIPTED},
      {"claude-code", agents::v1::AGENT_TYPE_CLAUDE_CODE},
      {"codex", agents::v1::AGENT_TYPE_CODEX},
      {"factory-droid", agents::v1::AGENT_TYPE_FACTORY_DROID}};
  options.agent_type = agents_by_name.at(config_.session_agent);
  options.idle_pause = absl::FromChrono(config_.session_idle_pause);
  options.end_after = absl::FromChrono(config_.session_end_after);
  auto manager = std::make_shared<sessions::SessionManager>(
      options, std::make_shared<sessions::PgSessionStore>(pool_), spawner);
  if (auto s = manager->Recover(); !s.ok()) return s;
  manager->StartMonitor();
  auto service = std::make_unique<sessions::SessionServiceImpl>(manager, executor_);
  host_.Register(service.get(), sessions::v1::SessionService::service_full_name());
  services_.push_back(std::move(service));
  // The user's jobs ending reach their PO agent (when jobs is hosted here).
  if (auto hub = std::static_pointer_cast<jobs::JobEventHub>(job_hub_)) {
    auto executor = executor_;
    hub->SubscribeOwner(
        jobs::JobEventHub::OwnerSubscriber{"",
                                           [manager, executor](const jobs::JobNotice& n) {
                                             if (n.type != jobs::v1::JOB_EVENT_TYPE_STATE_CHANGED)
                                               return;
                                             std::string outcome;
                                             if (n.state == jobs::v1::JOB_STATE_SUCCEEDED)
                                               outcome = "succeeded";
                                             if (n.state == jobs::v1::JOB_STATE_FAILED)
                                               outcome = "failed";
                                             if (n.state == jobs::v1::JOB_STATE_CANCELLED)
                                               outcome = "was cancelled";
                                             if (outcome.empty()) return;
                                             // Off the hub's thread: telling the session touches
                                             // the database.
                                             (void)executor->Submit([manager, n, outcome] {
                                               manager->OnJobEnded(n.owner_id, n.job_id, outcome);
                                             });
                                           },
                                           [] {}});
  }
  start_sessions_ = [manager] { manager->ResumeTurns(); };
  // Running turns may end within the drain deadline; then they are cut off
  // and run again after the restart.
  stop_sessions_ = [manager](absl::Time deadline) { manager->Shutdown(deadline); };
  return absl::OkStatus();
}

absl::Status Mesh::WriteBootstrapToken(const std::string& token) const {
  if (config_.bootstrap_token_file.empty()) {
    return absl::FailedPreconditionError(
        "this install has no users yet: pass --bootstrap_token_file so the first admin token can "
        "be handed to you");
  }
  int fd = ::open(config_.bootstrap_token_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ::fchmod(fd, 0600) != 0) {
    if (fd >= 0) ::close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("--bootstrap_token_file: cannot write '", config_.bootstrap_token_file, "'"));
  }
  std::string line = token + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ok = ::close(fd) == 0 && ok;
  if (!ok) return absl::UnavailableError("--bootstrap_token_file: write failed");
  spdlog::info("bootstrap admin token written to {} (mode 0600)", config_.bootstrap_token_file);
  return absl::OkStatus();
}

absl::Status Mesh::Start() {
  if (auto s = host_.Start(); !s.ok()) return s;
  if (start_sessions_) start_sessions_();
  return absl::OkStatus();
}

void Mesh::Shutdown() {
  // NOT_SERVING at once: nothing new is sent here while the rest drains.
  host_.StopServing();
  // One deadline for every drain, so together they take at most one.
  const absl::Time deadline = absl::Now() + absl::FromChrono(config_.drain_deadline);
  std::thread job_drain;
  if (stop_jobs_) {
    job_drain =
        std::thread([stop = std::exchange(stop_jobs_, nullptr), deadline] { stop(deadline); });
  }
  // Workers before the gRPC drain: their runners' streams would otherwise
  // hold it to its deadline, and they end STOPPED for the right reason.
  // Turns are cut off a little before it, so their callers still hear why.
  const absl::Duration margin =
      std::min(absl::Seconds(1), absl::FromChrono(config_.drain_deadline) / 5);
  if (stop_sessions_) std::exchange(stop_sessions_, nullptr)(deadline - margin);
  if (stop_agents_) std::exchange(stop_agents_, nullptr)();
  host_.Shutdown(absl::ToChronoTime(deadline));
  if (job_drain.joinable()) job_drain.join();
  if (stop_job_events_) std::exchange(stop_job_events_, nullptr)();
}

void Mesh::Wait() { host_.Wait(); }

}  // namespace orchestrator
