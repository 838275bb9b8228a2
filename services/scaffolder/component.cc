#include "services/scaffolder/component.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/config/process.h"
#include "services/common/crypto/secret_box.h"
#include "services/common/git/git_cli.h"
#include "services/common/git/github_host.h"
#include "services/common/git/local_git_host.h"
#include "services/common/git/smart_http_server.h"
#include "services/jobs/engine/job_engine.h"
#include "services/scaffolder/api/scaffolder_service.h"
#include "services/scaffolder/libgit2_worktree.h"
#include "services/scaffolder/peers/project_service_directory.h"
#include "services/scaffolder/store/pg_repository_ledger.h"

// The flags this component reads (ReadFlags), wherever it is hosted.
ABSL_FLAG(std::string, templates_dir, "",
          "directory of the built-in templates (\"\" = the ones installed with the binary)");
ABSL_FLAG(std::string, scaffolder_dir, "",
          "the scaffolder's data: local git repositories, scratch trees, fetched templates "
          "(\"\" = a temporary directory)");
ABSL_FLAG(std::string, git_host, "local",
          "where projects' repositories are made: local (served by the mesh) or github");
ABSL_FLAG(std::string, git_http_listen, "127.0.0.1:0",
          "host:port of the local git host's smart HTTP; port 0 picks one, so give a fixed "
          "one (tools/up: 50080) for repository URLs that outlive a restart");
ABSL_FLAG(std::string, git_public_url, "",
          "base URL of the local git host's repositories (\"\" = http://<git_http_listen>)");
ABSL_FLAG(std::string, github_api_url, "https://api.github.com", "GitHub's REST API");
ABSL_FLAG(std::string, github_owner, "",
          "GitHub organisation repositories are made in (\"\" = the token's own account)");
ABSL_FLAG(std::string, github_token_file, "", "file holding the GitHub token (--git_host=github)");

namespace orchestrator::scaffolder {
namespace fs = std::filesystem;
namespace {

// A template is small: a fetch that takes longer is refused (fetches are
// made one at a time, so a slow source must not hold the others long).
constexpr absl::Duration kTemplateFetchTimeout = absl::Seconds(30);

// --templates_dir, else installed next to the binary, else the source tree's.
std::string TemplatesDir(const MeshConfig& config) {
  if (!config.templates_dir.empty()) return config.templates_dir;
  const std::string installed = OwnBinaryDir() + "/../share/orchestrator/templates";
  std::error_code ec;
  if (fs::is_directory(installed, ec)) return installed;
  return ORCHESTRATOR_SOURCE_TEMPLATES_DIR;
}

// Local repositories are named <project id>[-N]: the project is the name's
// part before the first hyphen (ids have none).
std::string ProjectOfRepository(const std::string& name) { return name.substr(0, name.find('-')); }

class ScaffolderComponent final : public Component {
 public:
  static absl::StatusOr<std::unique_ptr<Component>> Build(ComponentContext& ctx) {
    auto self = std::unique_ptr<ScaffolderComponent>(new ScaffolderComponent(ctx));
    if (auto s = self->Init(ctx); !s.ok()) return s;
    return self;
  }

  ~ScaffolderComponent() override { Stop(); }

  void BeginDrain(absl::Time deadline) override {
    if (engine_) engine_->BeginDrain(deadline);
  }
  void Stop() override {
    engine_.reset();
    if (git_http_) git_http_->Stop();
    if (executor_) executor_->Shutdown();
  }

 private:
  explicit ScaffolderComponent(ComponentContext& ctx) : config_(ctx.config) {}

  absl::Status Init(ComponentContext& ctx) {
    dir_ = config_.scaffolder_dir;
    if (dir_.empty())
      dir_ = (fs::temp_directory_path() / NewId("orchestrator-scaffolder-")).string();
    std::error_code ec;
    for (const char* sub : {"repositories", "work", "template-cache"}) {
      fs::create_directories(fs::path(dir_) / sub, ec);
      if (ec) {
        return absl::FailedPreconditionError(
            absl::StrCat("--scaffolder_dir: cannot create '", dir_, "/", sub, "': ", ec.message()));
      }
    }
    auto catalog = std::make_shared<TemplateCatalog>(
        TemplatesDir(config_), dir_ + "/template-cache",
        [](const v1::TemplateSource& source, const std::string& into) {
          return git::GitCli(kTemplateFetchTimeout)
              .CloneAt(source.git_url(), source.git_tag(), into, {});
        });
    if (auto s = catalog->LoadBuiltins(); !s.ok()) return s;

    auto host = MakeGitHost(ctx);
    if (!host.ok()) return host.status();

    auto channel_to = ctx.channel_to;
    auto projects = std::make_shared<ProjectServiceDirectory>(
        [channel_to] { return projects::v1::ProjectService::NewStub(channel_to("projects")); },
        ctx.mesh, ctx.call_deadline);
    const Scaffolder::Options options{dir_ + "/work"};
    scaffolder_ = std::make_shared<Scaffolder>(
        catalog, *host, projects, std::make_shared<PgRepositoryLedger>(ctx.pool),
        std::make_shared<Libgit2Worktree>(options.default_branch), options);

    // The scaffold jobs run here, on the one job engine (its library).
    engine_ = std::make_unique<jobs::JobEngine>(ctx.pool, config_.database_url,
                                                jobs::JobEngine::OptionsOf(config_, 4));
    engine_->worker().Register(kScaffoldJobKind, [scaffolder = scaffolder_](jobs::JobContext& job) {
      return RunJob(*scaffolder, job);
    });
    if (auto s = engine_->Start(absl::FromChrono(ctx.call_deadline), "scaffolder"); !s.ok()) {
      return s;
    }

    executor_ = std::make_shared<BoundedExecutor>(4, 256);
    Serve(ctx.host,
          std::make_unique<ScaffolderServiceImpl>(scaffolder_, engine_->store(), projects,
                                                  ctx.project_visibility, executor_),
          v1::ScaffolderService::service_full_name());
    return absl::OkStatus();
  }

  absl::StatusOr<git::GitHostPtr> MakeGitHost(ComponentContext& ctx) {
    if (config_.git_host == "github") {
      auto token = ReadSecretFile("--github_token_file", config_.github_token_file);
      if (!token.ok()) return token.status();
      git::GitHubConfig github;
      github.api_url = config_.github_api_url;
      github.owner = config_.github_owner;
      github.token = *token;
      auto host = git::GitHubHost::FromConfig(github);
      if (!host.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--git_host=github: ", host.status().message()));
      }
      return git::GitHostPtr(*std::move(host));
    }
    // The local host: bare repositories served over smart HTTP, reachable
    // by whoever may see their project (asked of ProjectService with the
    // caller's own token, so an agent reaches only its worker's project).
    // Agents fetch but never push: their changes reach a repository through
    // the platform (the mesh credential), which pushes what passed the
    // project's tests.
    const std::string root = dir_ + "/repositories";
    auto visibility = ctx.project_visibility;
    git_http_ = std::make_unique<git::GitSmartHttpServer>(
        root, config_.git_http_listen,
        [visibility, executor = ctx.executor, host = &ctx.host, mesh = ctx.mesh](
            const std::string& repository, const std::string& token, bool write,
            std::function<void(absl::Status)> done) {
          const std::string project = ProjectOfRepository(repository);
          // The platform itself: the engineering component pushing a change
          // whose tests passed, a deploy reading a commit.
          if (mesh->Matches(token)) return done(absl::OkStatus());
          if (!write) {
            return visibility->CheckVisible({absl::StrCat("Bearer ", token), ""}, "repository",
                                            project, std::move(done));
          }
          // Verifying may ask AdminService: off the listener's thread.
          absl::Status queued = executor->Submit([visibility, host, token, project, done] {
            TokenVerifierPtr verifier = host->token_verifier();
            if (verifier == nullptr) return done(absl::UnavailableError("starting up"));
            auto caller = verifier->Verify(token);
            if (!caller.ok()) return done(caller.status());
            if (caller->kind == PrincipalKind::kAgent) {
              return done(absl::FailedPreconditionError(
                  "agents do not push: the platform pushes an agent's change once the "
                  "project's tests pass"));
            }
            visibility->CheckVisible({absl::StrCat("Bearer ", token), ""}, "repository", project,
                                     done);
          });
          if (!queued.ok()) done(queued);
        });
    auto port = git_http_->Start();
    if (!port.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("--git_http_listen: ", port.status().message()));
    }
    std::string base = config_.git_public_url;
    if (base.empty()) {
      const std::string host =
          config_.git_http_listen.substr(0, config_.git_http_listen.rfind(':'));
      base = absl::StrCat("http://", host, ":", *port);
    }
    return std::make_shared<git::LocalGitHost>(root, base, ctx.mesh->value());
  }

  static absl::StatusOr<google::protobuf::Struct> RunJob(const Scaffolder& scaffolder,
                                                         jobs::JobContext& job) {
    auto plan = ScaffoldPlan::FromParams(job.job().project_id(), job.job().params());
    if (!plan.ok()) return plan.status();
    ScaffoldJob run{job.job().id(), job.job().owner_id(),
                    absl::FromUnixSeconds(job.job().create_time().seconds()), *std::move(plan)};
    return scaffolder.Run(
        run,
        [&job](int percent, const std::string& message) { (void)job.Progress(percent, message); },
        [&job] { return job.cancelled(); });
  }

  const MeshConfig& config_;
  std::string dir_;
  std::unique_ptr<git::GitSmartHttpServer> git_http_;
  std::shared_ptr<Scaffolder> scaffolder_;
  std::unique_ptr<jobs::JobEngine> engine_;
  BoundedExecutorPtr executor_;
};

absl::Status ReadFlags(MeshConfig& config) {
  config.templates_dir = absl::GetFlag(FLAGS_templates_dir);
  config.scaffolder_dir = absl::GetFlag(FLAGS_scaffolder_dir);
  config.git_host = absl::GetFlag(FLAGS_git_host);
  if (config.git_host != "local" && config.git_host != "github") {
    return absl::InvalidArgumentError("--git_host: local or github");
  }
  config.git_http_listen = absl::GetFlag(FLAGS_git_http_listen);
  config.git_public_url = absl::GetFlag(FLAGS_git_public_url);
  config.github_api_url = absl::GetFlag(FLAGS_github_api_url);
  config.github_owner = absl::GetFlag(FLAGS_github_owner);
  config.github_token_file = absl::GetFlag(FLAGS_github_token_file);
  if (config.git_host == "github" && config.github_token_file.empty()) {
    return absl::InvalidArgumentError("--github_token_file: required with --git_host=github");
  }
  return absl::OkStatus();
}

}  // namespace

ComponentSpec Registration() {
  return {.name = "scaffolder",
          .service = v1::ScaffolderService::service_full_name(),
          .peers = {"projects", "jobs"},
          .migrations = &db::ScaffolderMigrations,
          .read_flags = &ReadFlags,
          .build = &ScaffolderComponent::Build};
}

}  // namespace orchestrator::scaffolder
