#include "services/deploy/component.h"

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "services/common/config/process.h"
#include "services/common/containers/docker_engine.h"
#include "services/common/crypto/secret_box.h"
#include "services/common/router/caddy_router.h"
#include "services/deploy/adapters/git_source_repository.h"
#include "services/deploy/adapters/http_health_probe.h"
#include "services/deploy/adapters/server_targets.h"
#include "services/deploy/api/deploy_service.h"
#include "services/deploy/domain/release_watch.h"
#include "services/deploy/domain/route_reconciler.h"
#include "services/deploy/peers/engineering_fix_peers.h"
#include "services/deploy/peers/mesh_peers.h"
#include "services/deploy/store/pg_release_store.h"
#include "services/jobs/engine/job_engine.h"
#include "services/jobs/engine/job_hooks.h"
#include "spdlog/spdlog.h"

// The flags this component reads (ReadFlags), wherever it is hosted.
ABSL_FLAG(std::string, container_engine_socket, "unix:///run/podman/podman.sock",
          "the container engine's Docker Engine API: unix:///PATH.sock (Docker, or Podman's "
          "`podman system service`; tools/up starts one), tcp://HOST:PORT");
ABSL_FLAG(std::string, caddy_admin_url, "http://127.0.0.1:2019", "Caddy's admin API");
ABSL_FLAG(std::string, router_listen, "127.0.0.1:8090",
          "where Caddy serves the projects (HOST:PORT or :PORT); a release's URL is "
          "http://<project>.<deploy_domain>[:PORT]");
ABSL_FLAG(std::string, template_bases, "",
          "the table of local base images by public name (\"\" = the one installed with the "
          "binary, tools/image/template-bases)");
ABSL_FLAG(std::string, deploy_dir, "",
          "scratch checkouts of deploys (\"\" = a temporary directory)");
ABSL_FLAG(absl::Duration, deploy_watch_window, absl::Seconds(60),
          "how long a release's health is watched after it goes live");
ABSL_FLAG(int, deploy_watch_failures, 3,
          "failed probes in a row that roll a watched release back to the one it replaced "
          "(0: never roll back automatically)");

namespace orchestrator::deploy {
namespace fs = std::filesystem;
namespace {

// The deploy component's periodic upkeep (the scheduler starts them).
constexpr char kReconcileRoutesKind[] = "deploy.routes.reconcile";
constexpr char kRemoveOrphansKind[] = "deploy.containers.remove_orphans";
constexpr char kWatchReleasesKind[] = "deploy.releases.watch";

// "public local [name]" lines, '#' comments: the public default of a build
// file's BASE_IMAGE to the local image built from Debian's archive.
absl::StatusOr<std::map<std::string, std::string>> ReadTemplateBases(const MeshConfig& config) {
  std::string path = config.template_bases_file;
  if (path.empty()) {
    const std::string installed = OwnBinaryDir() + "/../share/orchestrator/template-bases";
    std::error_code ec;
    path = fs::exists(installed, ec) ? installed : ORCHESTRATOR_SOURCE_TEMPLATE_BASES;
  }
  std::ifstream in(path);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat("--template_bases: cannot read '", path, "'"));
  }
  std::map<std::string, std::string> bases;
  std::string line;
  while (std::getline(in, line)) {
    const std::string uncommented = line.substr(0, line.find('#'));
    absl::string_view text = absl::StripAsciiWhitespace(uncommented);
    if (text.empty()) continue;
    std::vector<std::string> parts =
        absl::StrSplit(text, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (parts.size() >= 2) bases[parts[0]] = parts[1];
  }
  return bases;
}

// Fix jobs waiting on their engineering runs at once, per process.
constexpr int kFixesAtOnce = 4;

class DeployComponent final : public Component {
 public:
  static absl::StatusOr<std::unique_ptr<Component>> Build(ComponentContext& ctx) {
    auto self = std::unique_ptr<DeployComponent>(new DeployComponent(ctx));
    if (auto s = self->Init(ctx); !s.ok()) return s;
    return self;
  }

  ~DeployComponent() override { Stop(); }

  // Routes come back at once after a restart (Caddy may have lost them
  // too); from then on the scheduler's deploy.routes.reconcile keeps them.
  void Start() override { (void)ReconcileRoutes(); }
  void BeginDrain(absl::Time deadline) override {
    if (fix_engine_) fix_engine_->BeginDrain(deadline);
    if (engine_) engine_->BeginDrain(deadline);
  }
  void Stop() override {
    fix_engine_.reset();
    engine_.reset();
    if (executor_) executor_->Shutdown();
  }

 private:
  explicit DeployComponent(ComponentContext& ctx) : config_(ctx.config) {}

  absl::Status Init(ComponentContext& ctx) {
    dir_ = config_.deploy_dir;
    if (dir_.empty()) dir_ = (fs::temp_directory_path() / NewId("orchestrator-deploy-")).string();
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("--deploy_dir: cannot create '", dir_, "': ", ec.message()));
    }
    containers::DockerEngineConfig engine_config;
    engine_config.url = config_.container_engine_url;
    auto container_engine = containers::DockerEngine::FromConfig(engine_config);
    if (!container_engine.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--container_engine_socket: ", container_engine.status().message()));
    }
    containers::ContainerEnginePtr engine = *std::move(container_engine);
    router::CaddyRouterConfig router_config;
    router_config.admin_url = config_.caddy_admin_url;
    router_config.listen = config_.router_listen;
    auto caddy = router::CaddyRouter::FromConfig(router_config);
    if (!caddy.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--caddy_admin_url / --router_listen: ", caddy.status().message()));
    }
    std::shared_ptr<router::Router> router = *std::move(caddy);
    if (auto s = router::CheckListenerMigration(); !s.ok()) {
      spdlog::warn("deploy: {} (route switches may reset connections)", s.ToString());
    }
    auto bases = ReadTemplateBases(config_);
    if (!bases.ok()) return bases.status();

    auto channel_to = ctx.channel_to;
    auto projects = std::make_shared<ProjectServiceDirectory>(
        [channel_to] { return projects::v1::ProjectService::NewStub(channel_to("projects")); },
        ctx.mesh, ctx.call_deadline);
    auto allocations = std::make_shared<InfraPortAllocations>(
        [channel_to] { return infra::v1::InfraService::NewStub(channel_to("infra")); }, ctx.mesh,
        ctx.call_deadline);
    auto source = std::make_shared<GitSourceRepository>(ctx.mesh, absl::Minutes(2));
    auto releases = std::make_shared<PgReleaseStore>(ctx.pool);

    engine_ = std::make_unique<jobs::JobEngine>(ctx.pool, config_.database_url,
                                                jobs::JobEngine::OptionsOf(config_, 4));
    auto job_store = engine_->store();
    // The local server, and SSH servers through tunnels.
    ServerTarget local;
    local.server_name = "local";
    local.engine = engine;
    local.router = router;
    local.probe = std::make_shared<HttpHealthProbe>();
    local.url_port_suffix = UrlPortSuffix(config_.router_listen);
    remote::ServerConnectionsOptions connections;
    connections.scratch_dir = dir_;
    auto servers = std::make_shared<ConnectedServerTargets>(
        std::move(local),
        std::make_shared<remote::ServerConnections>(
            [allocations](const std::string& owner_id, const std::string& server_id) {
              return allocations->ServerAccess(owner_id, server_id);
            },
            std::move(connections)));
    auto readiness = std::make_shared<ReadinessChecker>(
        projects, source, allocations, servers, [job_store](const std::string& project_id) {
          return DeployInFlightIn(*job_store, project_id);
        });
    auto installation = releases->InstallationId();
    if (!installation.ok()) return installation.status();
    DeployerOptions options;
    options.installation = *installation;
    options.work_dir = dir_;
    options.base_images = *std::move(bases);
    // A failed deploy goes back to engineering when it is part of the mesh.
    std::shared_ptr<DeployFixer> fixer;
    if (ctx.reaches("engineering")) {
      fixer = std::make_shared<DeployFixer>(
          projects, releases,
          std::make_shared<EngineeringFixPeers>(
              [channel_to] {
                return engineering::v1::EngineeringService::NewStub(channel_to("engineering"));
              },
              ctx.mesh, ctx.call_deadline, job_store, readiness));
      options.on_failed_gate = [job_store, fixer](const FailedRelease& failed) {
        return StartFix(*job_store, *fixer, failed);
      };
    }
    auto route_mu = std::make_shared<absl::Mutex>();
    auto deployer = std::make_shared<Deployer>(projects, source, allocations, releases, servers,
                                               route_mu, std::move(options));
    if (config_.deploy_watch_failures > 0) {
      ReleaseWatchOptions watch;
      watch.window = absl::FromChrono(config_.deploy_watch_window);
      watch.failures = config_.deploy_watch_failures;
      watch_ = std::make_unique<ReleaseWatch>(releases, servers,
                                              AutomaticRollbacks(job_store, fixer), watch);
    }
    reconciler_ = std::make_shared<RouteReconciler>(releases, servers, route_mu, *installation);

    engine_->worker().Register(kReconcileRoutesKind,
                               [this](jobs::JobContext&) { return ReconcileRoutes(); });
    engine_->worker().Register(kWatchReleasesKind,
                               [this](jobs::JobContext&) { return WatchReleases(); });
    engine_->worker().Register(kRemoveOrphansKind,
                               [this](jobs::JobContext&) { return RemoveOrphans(); });
    engine_->worker().Register(kDeployJobKind, [deployer](jobs::JobContext& job) {
      return deployer->Deploy(JobOf(job), jobs::HooksOf(job));
    });
    engine_->worker().Register(kRollbackJobKind, [deployer](jobs::JobContext& job) {
      return deployer->Rollback(JobOf(job), jobs::HooksOf(job));
    });
    if (auto s = engine_->Start(absl::FromChrono(ctx.call_deadline), "deploy"); !s.ok()) return s;
    if (fixer != nullptr) {
      // Fixes wait on their engineering runs: on a worker of their own, so
      // that waiting never holds up deploys, rollbacks or the upkeep.
      fix_engine_ = std::make_unique<jobs::JobEngine>(
          ctx.pool, config_.database_url, jobs::JobEngine::OptionsOf(config_, kFixesAtOnce));
      fix_engine_->worker().Register(kFixJobKind, [fixer](jobs::JobContext& job) {
        return fixer->Run(job.job(), jobs::HooksOf(job));
      });
      if (auto s = fix_engine_->Start(absl::FromChrono(ctx.call_deadline), "deploy fixes");
          !s.ok()) {
        return s;
      }
    } else {
      spdlog::info(
          "deploy: the engineering component is not part of this mesh (--engineering_addr): "
          "failed deploys are reported, not fixed");
    }

    executor_ = std::make_shared<BoundedExecutor>(4, 256);
    Serve(ctx.host,
          std::make_unique<DeployServiceImpl>(readiness, releases, job_store,
                                              ctx.project_visibility, executor_),
          v1::DeployService::service_full_name());
    return absl::OkStatus();
  }

  static DeployJob JobOf(const jobs::JobContext& job) {
    const auto& params = job.job().params().fields();
    DeployJob run;
    run.id = job.job().id();
    run.owner_id = job.job().owner_id();
    run.project_id = job.job().project_id();
    if (auto it = params.find("commit_sha"); it != params.end()) {
      run.commit_sha = it->second.string_value();
    }
    if (auto it = params.find("release_id"); it != params.end()) {
      run.target_release_id = it->second.string_value();
    }
    if (auto it = params.find("server_id"); it != params.end()) {
      run.server_id = it->second.string_value();
    }
    if (auto it = params.find(kOnlyWhileLiveParam); it != params.end()) {
      run.only_while_live = it->second.string_value();
    }
    if (auto it = params.find(kAfterFixParam); it != params.end()) {
      run.after_fix = it->second.string_value();
    }
    return run;
  }

  // The rollback the watch decides on: a job of the failing release's
  // owner, one per failing release, telling why (the sessions component
  // tells the owner when it ends).
  static StartRollback AutomaticRollbacks(std::shared_ptr<jobs::PgJobStore> jobs,
                                          std::shared_ptr<DeployFixer> fixer) {
    return [jobs, fixer](const v1::Release& failing, const v1::Release& target,
                         const std::string& reason) -> absl::Status {
      jobs::EnqueueRequest job = RollbackJob(failing.owner_id(), failing.project_id(), target.id(),
                                             absl::StrCat("auto-rollback-", failing.id()));
      auto& params = *job.params.mutable_fields();
      params[kOnlyWhileLiveParam].set_string_value(failing.id());
      params[jobs::kStartedBecauseParam].set_string_value(reason);
      job.origin = jobs::PlatformOrigin(failing.job_id());
      auto queued = jobs->Enqueue(job, absl::Now());
      if (!queued.ok()) return queued.status();
      spdlog::warn("deploy: {}: job {}", reason, queued->id());
      // And the failure goes back to engineering, once.
      if (fixer == nullptr) return absl::OkStatus();
      // Unknown counts as a fix's: never a fix of a fix.
      auto deployed = jobs->Get(failing.job_id());
      const bool came_of_fix =
          !deployed.ok() || deployed->params().fields().contains(kAfterFixParam);
      (void)StartFix(*jobs, *fixer,
                     {.release = failing,
                      .why = reason,
                      .came_of_fix = came_of_fix,
                      .good_release_id = target.id()});
      return absl::OkStatus();
    };
  }

  // The fix of a failed release, if one is due: returns what to tell
  // ("The platform started a fix: job …"), or "".
  static std::string StartFix(jobs::PgJobStore& jobs, DeployFixer& fixer,
                              const FailedRelease& failed) {
    auto plan = fixer.Plan(failed);
    if (!plan.ok()) {
      spdlog::warn("deploy: no fix of release {}: {}", failed.release.id(),
                   plan.status().ToString());
      return "";
    }
    if (!*plan) return "";
    jobs::EnqueueRequest fix;
    fix.kind = kFixJobKind;
    fix.owner_id = failed.release.owner_id();
    fix.project_id = failed.release.project_id();
    fix.params = (*plan)->params;
    fix.request_id = (*plan)->request_id;
    fix.max_attempts = 5;
    fix.concurrency_key = absl::StrCat("deploy-fix:", failed.release.project_id());
    fix.origin = jobs::PlatformOrigin(failed.release.job_id());
    auto queued = jobs.Enqueue(fix, absl::Now());
    if (!queued.ok()) {
      spdlog::warn("deploy: the fix of release {} not queued: {}", failed.release.id(),
                   queued.status().ToString());
      return "";
    }
    spdlog::info("deploy: release {} failed; fix job {}", failed.release.id(), queued->id());
    return absl::StrCat("The platform started a fix (job ", queued->id(),
                        "): one engineering run with this failure, and a redeploy if it passes.");
  }

  // The releases that went live lately, probed once (the scheduler's
  // deploy.releases.watch, every 5 s by default).
  absl::StatusOr<google::protobuf::Struct> WatchReleases() {
    google::protobuf::Struct result;
    auto& fields = *result.mutable_fields();
    if (!watch_) {
      fields["watching"].set_bool_value(false);  // --deploy_watch_failures=0
      return result;
    }
    auto rolled_back = watch_->Tick();
    if (!rolled_back.ok()) return rolled_back.status();
    auto& list = *fields["rolled_back"].mutable_list_value();
    for (const auto& id : *rolled_back) list.add_values()->set_string_value(id);
    return result;
  }

  // Caddy's routes made those of the LIVE releases again.
  absl::StatusOr<google::protobuf::Struct> ReconcileRoutes() {
    auto report = reconciler_->ReconcileRoutes();
    if (!report.ok()) {
      spdlog::warn("deploy: reconciling routes: {}", report.status().ToString());
      return report.status();
    }
    if (report->changed()) {
      spdlog::info("deploy: routes reconciled: {} added, {} fixed, {} removed",
                   report->added.size(), report->updated.size(), report->removed.size());
    }
    google::protobuf::Struct result;
    auto& fields = *result.mutable_fields();
    fields["routes_added"].set_number_value(static_cast<double>(report->added.size()));
    fields["routes_fixed"].set_number_value(static_cast<double>(report->updated.size()));
    fields["routes_removed"].set_number_value(static_cast<double>(report->removed.size()));
    return result;
  }

  // The containers of releases no longer live removed.
  absl::StatusOr<google::protobuf::Struct> RemoveOrphans() {
    auto removed = reconciler_->RemoveOrphans();
    if (!removed.ok()) return removed.status();
    if (*removed > 0) spdlog::info("deploy: removed {} containers no release uses", *removed);
    google::protobuf::Struct result;
    (*result.mutable_fields())["containers_removed"].set_number_value(*removed);
    return result;
  }

  const MeshConfig& config_;
  std::string dir_;
  std::shared_ptr<RouteReconciler> reconciler_;
  std::unique_ptr<ReleaseWatch> watch_;  // null: no automatic rollbacks
  std::unique_ptr<jobs::JobEngine> engine_;
  std::unique_ptr<jobs::JobEngine> fix_engine_;  // null without engineering
  BoundedExecutorPtr executor_;
};

absl::Status ReadFlags(MeshConfig& config) {
  config.container_engine_url = absl::GetFlag(FLAGS_container_engine_socket);
  config.caddy_admin_url = absl::GetFlag(FLAGS_caddy_admin_url);
  config.router_listen = absl::GetFlag(FLAGS_router_listen);
  if (config.router_listen.find(':') == std::string::npos) {
    return absl::InvalidArgumentError("--router_listen: HOST:PORT or :PORT");
  }
  config.template_bases_file = absl::GetFlag(FLAGS_template_bases);
  config.deploy_dir = absl::GetFlag(FLAGS_deploy_dir);
  config.deploy_watch_window = Millis(absl::GetFlag(FLAGS_deploy_watch_window));
  config.deploy_watch_failures = absl::GetFlag(FLAGS_deploy_watch_failures);
  if (config.deploy_watch_window < std::chrono::milliseconds(0) ||
      config.deploy_watch_failures < 0 || config.deploy_watch_failures > 100) {
    return absl::InvalidArgumentError("--deploy_watch_window >= 0, --deploy_watch_failures 0-100");
  }
  return absl::OkStatus();
}

}  // namespace

ComponentSpec Registration() {
  return {.name = "deploy",
          .service = v1::DeployService::service_full_name(),
          .peers = {"projects", "infra", "jobs"},
          .optional_peers = {"engineering"},
          .migrations = &db::DeployMigrations,
          .read_flags = &ReadFlags,
          .build = &DeployComponent::Build,
          .periodic_tasks = {{.id = kWatchReleasesKind,
                              .description = "probes the health path of every release within "
                                             "--deploy_watch_window of going live; "
                                             "--deploy_watch_failures failures in a row roll it "
                                             "back to the release it replaced",
                              .job_kind = kWatchReleasesKind,
                              .interval = absl::Seconds(5)},
                             {.id = kReconcileRoutesKind,
                              .description = "makes Caddy's routes those of the LIVE releases "
                                             "again (a Caddy that restarted, a route changed by "
                                             "hand)",
                              .job_kind = kReconcileRoutesKind,
                              .interval = absl::Seconds(30)},
                             {.id = kRemoveOrphansKind,
                              .description = "removes the containers of releases no longer "
                                             "live (failed, superseded and drained, or none)",
                              .job_kind = kRemoveOrphansKind,
                              .interval = absl::Minutes(5)}}};
}

}  // namespace orchestrator::deploy
