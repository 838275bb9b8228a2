#include "services/orchestratord/mesh.h"

#include <fcntl.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

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
#include "services/common/crypto/secret_box.h"
#include "services/common/db/migrations.h"
#include "services/jobs/api/job_service.h"
#include "services/jobs/engine/demo_handlers.h"
#include "services/jobs/engine/worker.h"
#include "services/projects/api/project_service.h"
#include "services/projects/store/pg_project_store.h"
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
template <typename Service>
void HostContractOnly(std::vector<std::unique_ptr<grpc::Service>>& services, ServiceHost& host) {
  auto service = std::make_unique<typename Service::CallbackService>();
  host.Register(service.get(), Service::service_full_name());
  services.push_back(std::move(service));
}

}  // namespace

Mesh::Mesh(const MeshConfig& config)
    : config_(config), host_(HostOptions{config.listen, config.drain_deadline}) {}

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
  }

  if (config_.Hosts("jobs")) {
    if (auto s = db::ApplyMigrations(*pool_, db::JobsMigrations()); !s.ok()) return s;
    auto store = std::make_shared<jobs::PgJobStore>(pool_);
    auto hub = std::make_shared<jobs::JobEventHub>(config_.database_url, pool_);
    jobs::WorkerOptions options;
    options.concurrency = config_.job_concurrency;
    options.lease = absl::FromChrono(config_.job_lease);
    options.heartbeat = options.lease / 3;
    options.reap = std::min(options.lease / 2, absl::Seconds(2));
    options.limits.per_owner.assign(config_.job_owner_limits.begin(),
                                    config_.job_owner_limits.end());
    auto worker = std::make_shared<jobs::Worker>(store, hub.get(), options);
    if (config_.demo_jobs) jobs::RegisterDemoHandlers(*worker);
    auto service = std::make_unique<jobs::JobServiceImpl>(
        std::make_shared<jobs::JobBoard>(store), store, hub.get(), executor_,
        jobs::JobServiceOptions{config_.demo_jobs});
    host_.Register(service.get(), jobs::v1::JobService::service_full_name());
    services_.push_back(std::move(service));
    hub->Start();
    // Serving before the hub listens would let watchers miss events.
    if (!hub->WaitUntilListening(absl::FromChrono(config_.call_deadline))) {
      hub->Stop();
      return absl::UnavailableError("jobs: cannot LISTEN for job events on the database");
    }
    worker->Start();
    stop_jobs_ = [hub, worker, drain = config_.drain_deadline] {
      worker->Stop(absl::FromChrono(drain));
      hub->Stop();
    };
    job_hub_ = hub;
    job_worker_ = worker;
  }
  if (config_.Hosts("sessions")) HostContractOnly<sessions::v1::SessionService>(services_, host_);
  if (config_.Hosts("agents")) {
    HostContractOnly<agents::v1::AgentService>(services_, host_);
    HostContractOnly<agents::v1::RunnerService>(services_, host_);
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

absl::Status Mesh::Start() { return host_.Start(); }

void Mesh::Shutdown() {
  host_.Shutdown();
  if (stop_jobs_) {
    stop_jobs_();
    stop_jobs_ = nullptr;
  }
}

void Mesh::Wait() { host_.Wait(); }

}  // namespace orchestrator
