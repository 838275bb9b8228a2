#include "services/sessions/component.h"

#include <map>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "orchestrator/agents/v1/agents.grpc.pb.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "services/common/config/agent_names.h"
#include "services/common/peers/agent_service_driver.h"
#include "services/sessions/api/session_service.h"
#include "services/sessions/peers/job_end_watcher.h"
#include "services/sessions/store/pg_session_store.h"

// The flags this component reads (ReadFlags), wherever it is hosted.
ABSL_FLAG(std::string, session_agent, "scripted",
          "the PO agent: scripted (no model key needed), claude-code, codex or factory-droid");
ABSL_FLAG(std::string, session_agent_env, "",
          "KEY=VALUE,... for the PO agent, e.g. ANTHROPIC_BASE_URL=...,ANTHROPIC_API_KEY=...");
ABSL_FLAG(absl::Duration, session_idle_pause, absl::Minutes(5),
          "an idle session's worker is paused after this");
ABSL_FLAG(absl::Duration, session_end_after, absl::Hours(24), "an idle session ends after this");

namespace orchestrator::sessions {
namespace {

SessionManager::Options ManagerOptionsOf(const MeshConfig& config) {
  SessionManager::Options options;
  options.agent_type = *AgentTypeNamed(config.session_agent);  // Validate checked it
  options.idle_pause = absl::FromChrono(config.session_idle_pause);
  options.end_after = absl::FromChrono(config.session_end_after);
  return options;
}

class SessionsComponent final : public Component {
 public:
  explicit SessionsComponent(ComponentContext& ctx)
      : drain_deadline_(absl::FromChrono(ctx.config.drain_deadline)),
        manager_(std::make_shared<SessionManager>(
            ManagerOptionsOf(ctx.config), std::make_shared<PgSessionStore>(ctx.pool),
            std::make_shared<AgentServiceDriver>(
                [channel = ctx.channel_to] {
                  return agents::v1::AgentService::NewStub(channel("agents"));
                },
                ctx.mesh, AgentServiceDriver::Options{.call_deadline = ctx.call_deadline}))),
        // The user's jobs ending reach their PO agent.
        watcher_(std::make_unique<JobEndWatcher>(
            [channel = ctx.channel_to] { return jobs::v1::JobService::NewStub(channel("jobs")); },
            ctx.mesh, [manager = manager_](const JobEnd& end) { manager->OnJobEnded(end); })) {
    Serve(ctx.host, std::make_unique<SessionServiceImpl>(manager_, ctx.executor),
          v1::SessionService::service_full_name());
  }

  // After a restart: the messages whose turns had not ended are queued
  // again (no call to a peer yet).
  absl::Status Recover() { return manager_->Recover(); }

  // Once serving: the turns a restart cut off run again (their workers
  // connect back through the mesh), idle sessions are watched, job ends
  // are listened to.
  void Start() override {
    manager_->ResumeTurns();
    manager_->StartMonitor();
    watcher_->Start();
  }

  // Before agents stops the workers: running turns may end until a little
  // before the deadline, so their callers still hear why; then they are
  // cut off and run again after the restart.
  void Drain(absl::Time deadline) override {
    watcher_->Stop();
    const absl::Duration margin = std::min(absl::Seconds(1), drain_deadline_ / 5);
    manager_->Shutdown(deadline - margin);
  }

 private:
  const absl::Duration drain_deadline_;
  std::shared_ptr<SessionManager> manager_;
  std::unique_ptr<JobEndWatcher> watcher_;  // after manager_: stops first
};

absl::Status ReadFlags(MeshConfig& config) {
  config.session_agent = absl::GetFlag(FLAGS_session_agent);
  // Also the agents component's: it gives the PO workers this environment.
  for (absl::string_view kv :
       absl::StrSplit(absl::GetFlag(FLAGS_session_agent_env), ',', absl::SkipEmpty())) {
    const size_t eq = kv.find('=');
    if (eq == absl::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--session_agent_env: '", kv, "' is not KEY=VALUE"));
    }
    config.session_agent_env[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
  }
  config.session_idle_pause = Millis(absl::GetFlag(FLAGS_session_idle_pause));
  config.session_end_after = Millis(absl::GetFlag(FLAGS_session_end_after));
  return absl::OkStatus();
}

}  // namespace

ComponentSpec Registration() {
  return {.name = "sessions",
          .service = v1::SessionService::service_full_name(),
          .peers = {"agents", "jobs"},
          .migrations = &db::SessionsMigrations,
          .read_flags = &ReadFlags,
          .build = [](ComponentContext& ctx) -> absl::StatusOr<std::unique_ptr<Component>> {
            auto sessions = std::make_unique<SessionsComponent>(ctx);
            if (auto s = sessions->Recover(); !s.ok()) return s;
            return sessions;
          }};
}

}  // namespace orchestrator::sessions
