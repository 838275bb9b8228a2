#include "services/jobs/component.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/jobs/api/job_service.h"
#include "services/jobs/engine/demo_handlers.h"
#include "services/jobs/engine/job_engine.h"
#include "services/jobs/peers/session_messages.h"

// The flags this component reads (ReadFlags), wherever it is hosted.
ABSL_FLAG(bool, demo_jobs, false, "run the demo.sleep / demo.fail / demo.noop job kinds");
ABSL_FLAG(int, job_concurrency, 8, "jobs this process runs at once");
ABSL_FLAG(std::string, job_owner_limits, "deploy=3",
          "RUNNING jobs allowed per owner for a kind: kind=N,kind=N (\"\" = no limits)");
ABSL_FLAG(absl::Duration, job_lease, absl::Seconds(30),
          "how long a claimed job stays leased without a heartbeat");
ABSL_FLAG(absl::Duration, job_retention, absl::Hours(24 * 7),
          "how long ended jobs and their events are kept: the scheduler's jobs.prune task deletes "
          "older ones (1h-8760h)");

namespace orchestrator::jobs {
namespace {

// The periodic task deleting what the retention lets go.
constexpr char kPruneKind[] = "jobs.prune";

class JobsComponent final : public Component {
 public:
  explicit JobsComponent(ComponentContext& ctx)
      : engine_(ctx.pool, ctx.config.database_url,
                JobEngine::OptionsOf(ctx.config, ctx.config.job_concurrency)) {
    if (ctx.config.demo_jobs) RegisterDemoHandlers(engine_.worker());
    engine_.worker().Register(
        kPruneKind,
        [store = engine_.store(), retention = absl::FromChrono(ctx.config.job_retention)](
            JobContext&) -> absl::StatusOr<google::protobuf::Struct> {
          auto deleted = store->PruneFinished(absl::Now() - retention);
          if (!deleted.ok()) return deleted.status();
          google::protobuf::Struct result;
          (*result.mutable_fields())["jobs_deleted"].set_number_value(
              static_cast<double>(*deleted));
          (*result.mutable_fields())["retention"].set_string_value(absl::FormatDuration(retention));
          return result;
        });
    JobServiceOptions options{ctx.config.demo_jobs};
    options.projects = ctx.project_visibility;
    // A project's history shows the messages that started its jobs when
    // the sessions component is part of the mesh.
    if (ctx.reaches("sessions")) {
      options.messages = std::make_shared<SessionMessagesOverStub>(
          [channel = ctx.channel_to] {
            return sessions::v1::SessionService::NewStub(channel("sessions"));
          },
          ctx.mesh, ctx.call_deadline);
    }
    Serve(ctx.host,
          std::make_unique<JobServiceImpl>(std::make_shared<JobBoard>(engine_.store()),
                                           engine_.store(), &engine_.hub(), ctx.executor, options),
          v1::JobService::service_full_name());
  }

  absl::Status Listen(absl::Duration timeout) { return engine_.Start(timeout, "jobs"); }
  void BeginDrain(absl::Time deadline) override { engine_.BeginDrain(deadline); }
  void Stop() override { engine_.Stop(); }

 private:
  JobEngine engine_;
};

absl::Status ReadFlags(MeshConfig& config) {
  config.demo_jobs = absl::GetFlag(FLAGS_demo_jobs);
  config.job_concurrency = absl::GetFlag(FLAGS_job_concurrency);
  config.job_lease = Millis(absl::GetFlag(FLAGS_job_lease));
  const absl::Duration retention = absl::GetFlag(FLAGS_job_retention);
  if (retention < absl::Hours(1) || retention > absl::Hours(24 * 365)) {
    return absl::InvalidArgumentError("--job_retention: from 1h to 8760h");
  }
  config.job_retention = Millis(retention);
  return ParseJobOwnerLimits(absl::GetFlag(FLAGS_job_owner_limits), &config.job_owner_limits);
}

}  // namespace

ComponentSpec Registration() {
  return {.name = "jobs",
          .service = v1::JobService::service_full_name(),
          .peers = {"projects"},
          .optional_peers = {"sessions"},
          .migrations = &db::JobsMigrations,
          .read_flags = &ReadFlags,
          .build = [](ComponentContext& ctx) -> absl::StatusOr<std::unique_ptr<Component>> {
            auto jobs = std::make_unique<JobsComponent>(ctx);
            if (auto s = jobs->Listen(absl::FromChrono(ctx.config.call_deadline)); !s.ok())
              return s;
            return jobs;
          },
          .periodic_tasks = {{.id = kPruneKind,
                              .description = "deletes ended jobs (with their events) older than "
                                             "--job_retention",
                              .job_kind = kPruneKind,
                              .interval = absl::Hours(1)}}};
}

}  // namespace orchestrator::jobs
