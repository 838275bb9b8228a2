#include "services/engineering/component.h"

#include <filesystem>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "orchestrator/agents/v1/agents.grpc.pb.h"
#include "services/common/config/agent_names.h"
#include "services/common/config/process.h"
#include "services/common/crypto/secret_box.h"
#include "services/common/peers/agent_service_driver.h"
#include "services/engineering/adapters/mirror_git_remote.h"
#include "services/engineering/api/engineering_service.h"
#include "services/engineering/domain/engineer.h"
#include "services/engineering/peers/project_service_directory.h"
#include "services/engineering/store/pg_run_store.h"
#include "services/jobs/engine/job_engine.h"
#include "services/jobs/engine/job_hooks.h"

// The flags this component reads (ReadFlags), wherever it is hosted.
ABSL_FLAG(std::string, engineering_dir, "",
          "mirrors of the projects' repositories and bundles on their way to them (\"\" = a "
          "temporary directory)");
ABSL_FLAG(std::string, engineering_agent, "scripted",
          "the agent an engineering run uses unless it names one: scripted, claude-code, codex "
          "or factory-droid (the model credentials come from --session_agent_env)");
ABSL_FLAG(int, engineering_max_iterations, 3,
          "attempts (an agent turn, then the project's tests) before a run asks for a human, "
          "unless the run says (1-10)");
ABSL_FLAG(absl::Duration, engineering_task_timeout, absl::Minutes(30),
          "longest one agent turn of an engineering run may take");
ABSL_FLAG(absl::Duration, engineering_test_timeout, absl::Minutes(10),
          "longest a project's tests may run");
ABSL_FLAG(int64_t, engineering_token_budget, 0,
          "model tokens (input plus output) a user's engineering runs may use within "
          "--engineering_budget_window; a run that would start over it is refused (0: no budget)");
ABSL_FLAG(absl::Duration, engineering_budget_window, absl::Hours(24 * 30),
          "the sliding window --engineering_token_budget counts");

namespace orchestrator::engineering {
namespace fs = std::filesystem;
namespace {

class EngineeringComponent final : public Component {
 public:
  static absl::StatusOr<std::unique_ptr<Component>> Build(ComponentContext& ctx) {
    auto self = std::unique_ptr<EngineeringComponent>(new EngineeringComponent(ctx));
    if (auto s = self->Init(ctx); !s.ok()) return s;
    return self;
  }

  ~EngineeringComponent() override { Stop(); }

  void BeginDrain(absl::Time deadline) override {
    if (engine_) engine_->BeginDrain(deadline);
  }
  void Stop() override {
    engine_.reset();
    if (executor_) executor_->Shutdown();
  }

 private:
  explicit EngineeringComponent(ComponentContext& ctx) : config_(ctx.config) {}

  absl::Status Init(ComponentContext& ctx) {
    std::string dir = config_.engineering_dir;
    if (dir.empty())
      dir = (fs::temp_directory_path() / NewId("orchestrator-engineering-")).string();
    std::error_code ec;
    for (const char* sub : {"mirrors", "bundles"}) {
      fs::create_directories(fs::path(dir) / sub, ec);
      if (ec) {
        return absl::FailedPreconditionError(
            absl::StrCat("--engineering_dir: cannot create '", dir, "/", sub, "': ", ec.message()));
      }
    }
    MirrorGitRemote::Options remote_options;
    remote_options.mirrors_dir = dir + "/mirrors";
    remote_options.mesh = ctx.mesh;
    if (config_.git_host == "github") {
      auto token = ReadSecretFile("--github_token_file", config_.github_token_file);
      if (!token.ok()) return token.status();
      remote_options.github.api_url = config_.github_api_url;
      remote_options.github.owner = config_.github_owner;
      remote_options.github.token = *token;
    }
    auto git = MirrorGitRemote::Make(std::move(remote_options));
    if (!git.ok()) return git.status();

    auto channel_to = ctx.channel_to;
    auto projects = std::make_shared<ProjectServiceDirectory>(
        [channel_to] { return projects::v1::ProjectService::NewStub(channel_to("projects")); },
        ctx.mesh, ctx.call_deadline);
    auto agents = std::make_shared<AgentServiceDriver>(
        [channel_to] { return agents::v1::AgentService::NewStub(channel_to("agents")); }, ctx.mesh,
        AgentServiceDriver::Options{.call_deadline = ctx.call_deadline});
    auto runs = std::make_shared<PgRunStore>(ctx.pool);

    EngineerOptions options;
    options.defaults = DefaultsOf(config_);
    options.task_timeout = absl::FromChrono(config_.engineering_task_timeout);
    options.test_timeout = absl::FromChrono(config_.engineering_test_timeout);
    options.work_dir = dir + "/bundles";
    auto engineer = std::make_shared<Engineer>(runs, projects, agents, *std::move(git), options);

    engine_ = std::make_unique<jobs::JobEngine>(ctx.pool, config_.database_url,
                                                jobs::JobEngine::OptionsOf(config_, 4));
    engine_->worker().Register(kEngineeringJobKind, [engineer](jobs::JobContext& job) {
      return engineer->Run(job.job(), jobs::HooksOf(job));
    });
    if (auto s = engine_->Start(absl::FromChrono(ctx.call_deadline), "engineering"); !s.ok()) {
      return s;
    }
    executor_ = std::make_shared<BoundedExecutor>(4, 256);
    Serve(
        ctx.host,
        std::make_unique<EngineeringServiceImpl>(
            runs, projects, engine_->store(), ctx.project_visibility, executor_, options.defaults),
        v1::EngineeringService::service_full_name());
    return absl::OkStatus();
  }

  static EngineeringDefaults DefaultsOf(const MeshConfig& config) {
    EngineeringDefaults d;
    d.agent_type = *AgentTypeNamed(config.engineering_agent);  // ReadFlags checked it
    d.max_iterations = config.engineering_max_iterations;
    d.token_budget = config.engineering_token_budget;
    d.budget_window = absl::FromChrono(config.engineering_budget_window);
    return d;
  }

  const MeshConfig& config_;
  std::unique_ptr<jobs::JobEngine> engine_;
  BoundedExecutorPtr executor_;
};

absl::Status ReadFlags(MeshConfig& config) {
  config.engineering_dir = absl::GetFlag(FLAGS_engineering_dir);
  config.engineering_agent = absl::GetFlag(FLAGS_engineering_agent);
  if (!AgentTypeNamed(config.engineering_agent)) {
    return absl::InvalidArgumentError(
        "--engineering_agent must be scripted, claude-code, codex or factory-droid");
  }
  config.engineering_max_iterations = absl::GetFlag(FLAGS_engineering_max_iterations);
  if (config.engineering_max_iterations < 1 || config.engineering_max_iterations > 10) {
    return absl::InvalidArgumentError("--engineering_max_iterations must be between 1 and 10");
  }
  const absl::Duration task = absl::GetFlag(FLAGS_engineering_task_timeout);
  const absl::Duration test = absl::GetFlag(FLAGS_engineering_test_timeout);
  if (task < absl::Seconds(1) || task > absl::Hours(24) || test < absl::Seconds(1) ||
      test > absl::Hours(1)) {
    return absl::InvalidArgumentError(
        "--engineering_task_timeout must be 1s to 24h, --engineering_test_timeout 1s to 1h");
  }
  config.engineering_task_timeout = Millis(task);
  config.engineering_test_timeout = Millis(test);
  config.engineering_token_budget = absl::GetFlag(FLAGS_engineering_token_budget);
  const absl::Duration window = absl::GetFlag(FLAGS_engineering_budget_window);
  if (config.engineering_token_budget < 0 || window < absl::Minutes(1)) {
    return absl::InvalidArgumentError(
        "--engineering_token_budget must be >= 0 and --engineering_budget_window >= 1m");
  }
  config.engineering_budget_window = Millis(window);
  return absl::OkStatus();
}

}  // namespace

ComponentSpec Registration() {
  return {.name = "engineering",
          .service = v1::EngineeringService::service_full_name(),
          .peers = {"projects", "jobs", "agents"},
          .migrations = &db::EngineeringMigrations,
          .read_flags = &ReadFlags,
          .build = &EngineeringComponent::Build};
}

}  // namespace orchestrator::engineering
