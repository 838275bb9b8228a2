#include "services/orchestratord/mesh.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "orchestrator/admin/v1/admin.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "services/admin/api/remote_token_verifier.h"
#include "services/common/db/migrations.h"
#include "services/common/peers/project_visibility.h"
#include "services/orchestratord/components.h"
#include "spdlog/spdlog.h"

namespace orchestrator {

Mesh::Mesh(const MeshConfig& config, MeshCredentialPtr mesh)
    : config_(config),
      mesh_(std::move(mesh)),
      host_(HostOptions{.listen = config.listen,
                        .drain_deadline = config.drain_deadline,
                        .rate_limits = {.per_token = {config.rate_limit_per_token.first,
                                                      config.rate_limit_per_token.second},
                                        .per_user = {config.rate_limit_per_user.first,
                                                     config.rate_limit_per_user.second}},
                        .mesh_credential = mesh_}) {}

Mesh::~Mesh() {
  Shutdown();
  // In reverse build order: a component before the peers it uses.
  while (!components_.empty()) components_.pop_back();
  // Work still queued runs now, while the server its in-process channels
  // lead to still exists.
  if (executor_) executor_->Shutdown();
  executor_.reset();
}

absl::StatusOr<std::unique_ptr<Mesh>> Mesh::Create(const MeshConfig& config) {
  if (auto s = config.Validate(ComponentNames()); !s.ok()) return s;
  MeshCredentialPtr mesh;
  if (config.mesh_credential_file.empty()) {
    mesh = std::make_shared<MeshCredential>(MeshCredential::Random());
  } else {
    auto loaded = MeshCredential::FromFile(config.mesh_credential_file);
    if (!loaded.ok()) return loaded.status();
    mesh = std::make_shared<MeshCredential>(*std::move(loaded));
  }
  std::unique_ptr<Mesh> m(new Mesh(config, std::move(mesh)));
  if (auto s = m->Build(); !s.ok()) return s;
  return m;
}

std::shared_ptr<grpc::Channel> Mesh::ChannelTo(const std::string& component) {
  if (config_.Hosts(component)) {
    // The in-process channel exists once the server serves; a component
    // calling a co-hosted peer while being built waits for that.
    serving_or_over_.WaitForNotification();
    absl::MutexLock lock(&channels_mu_);
    auto& channel = channels_[""];
    if (!channel) {
      channel = serving_ ? host_.InProcessChannel()
                         // Never served: a channel whose calls fail.
                         : grpc::CreateChannel("unix:/nonexistent/orchestrator-mesh.sock",
                                               grpc::InsecureChannelCredentials());
    }
    return channel;
  }
  absl::MutexLock lock(&channels_mu_);
  auto& channel = channels_[component];
  if (!channel) {
    auto addr = config_.remote_addrs.find(component);
    // Components are built only with their peers reachable (see Build);
    // another component's name here is a programming error answered
    // UNAVAILABLE rather than a crash.
    channel = grpc::CreateChannel(addr == config_.remote_addrs.end()
                                      ? "unix:/nonexistent/orchestrator-mesh.sock"
                                      : addr->second,
                                  grpc::InsecureChannelCredentials());
  }
  return channel;
}

absl::Status Mesh::Build() {
  executor_ = std::make_shared<BoundedExecutor>(config_.executor_threads, config_.executor_queue);
  pool_ = std::make_shared<db::Pool>(db::PoolOptions{config_.database_url, config_.db_pool_size});

  // Project ids other components' requests name are checked with
  // ProjectService, as the caller; without it they are refused.
  ProjectVisibilityPtr project_visibility;
  if (config_.Hosts("projects") || config_.remote_addrs.contains("projects")) {
    project_visibility = std::make_shared<RemoteProjectVisibility>(
        [this] { return projects::v1::ProjectService::NewStub(ChannelTo("projects")); },
        config_.call_deadline);
  }
  ComponentContext context{.config = config_,
                           .pool = pool_,
                           .executor = executor_,
                           .mesh = mesh_,
                           .host = host_,
                           .channel_to = [this](const std::string& c) { return ChannelTo(c); },
                           .components = ComponentNames(),
                           .reaches =
                               [this](const std::string& c) {
                                 return config_.Hosts(c) || config_.remote_addrs.contains(c);
                               },
                           .project_visibility = project_visibility,
                           .call_deadline = config_.call_deadline,
                           .periodic_tasks = PeriodicTasks()};
  TokenVerifierPtr local_verifier;
  for (const ComponentSpec& spec : Components()) {
    if (!config_.Hosts(spec.name)) continue;
    for (const std::string& peer : spec.peers) {
      if (!config_.Hosts(peer) && !config_.remote_addrs.contains(peer)) {
        return absl::FailedPreconditionError(absl::StrCat(spec.name, " calls ", peer, ": host ",
                                                          peer, " here too (--services) or give --",
                                                          peer, "_addr"));
      }
    }
    if (spec.migrations != nullptr) {
      if (auto s = db::ApplyMigrations(*pool_, spec.migrations()); !s.ok()) return s;
    }
    auto component = spec.build(context);
    if (!component.ok()) {
      return absl::Status(component.status().code(),
                          absl::StrCat(spec.name, ": ", component.status().message()));
    }
    if (auto v = (*component)->LocalTokenVerifier()) local_verifier = v;
    components_.push_back(*std::move(component));
  }
  // Verifying tokens: the directory itself when hosted here, else
  // AdminService remotely (Validate made sure it is named).
  TokenVerifierPtr source = local_verifier;
  if (!source) {
    source = std::make_shared<admin::RemoteTokenVerifier>(
        admin::v1::AdminService::NewStub(ChannelTo("admin")), config_.call_deadline);
  }
  verifier_ = std::make_shared<CachingTokenVerifier>(source, config_.token_cache_ttl);
  for (auto& c : components_) c->OnCredentialsChanged([v = verifier_.get()] { v->ForgetAll(); });
  host_.SetTokenVerifier(verifier_);
  return absl::OkStatus();
}

absl::Status Mesh::Start() {
  absl::Status started = host_.Start();
  serving_ = started.ok();
  serving_or_over_.Notify();
  if (!started.ok()) return started;
  for (auto& c : components_) c->Start();
  return absl::OkStatus();
}

void Mesh::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (!serving_or_over_.HasBeenNotified()) serving_or_over_.Notify();
  // NOT_SERVING at once: nothing new is sent here while the rest drains.
  host_.StopServing();
  // One deadline for every drain, so together they take at most one.
  const absl::Time deadline = absl::Now() + absl::FromChrono(config_.drain_deadline);
  for (auto& c : components_) c->BeginDrain(deadline);
  for (auto it = components_.rbegin(); it != components_.rend(); ++it) (*it)->Drain(deadline);
  host_.Shutdown(absl::ToChronoTime(deadline));
  for (auto it = components_.rbegin(); it != components_.rend(); ++it) (*it)->Stop();
}

void Mesh::Wait() { host_.Wait(); }

}  // namespace orchestrator
