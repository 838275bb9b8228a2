#include "services/jobs/component.h"

#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/jobs/api/job_service.h"
#include "services/jobs/engine/demo_handlers.h"
#include "services/jobs/engine/worker.h"

// The flags this component reads (ReadFlags), wherever it is hosted.
ABSL_FLAG(bool, demo_jobs, false, "run the demo.sleep / demo.fail / demo.noop job kinds");
ABSL_FLAG(int, job_concurrency, 8, "jobs this process runs at once");
ABSL_FLAG(std::string, job_owner_limits, "deploy=3",
          "RUNNING jobs allowed per owner for a kind: kind=N,kind=N (\"\" = no limits)");
ABSL_FLAG(absl::Duration, job_lease, absl::Seconds(30),
          "how long a claimed job stays leased without a heartbeat");

namespace orchestrator::jobs {
namespace {

class JobsComponent final : public Component {
 public:
  explicit JobsComponent(ComponentContext& ctx)
      : store_(std::make_shared<PgJobStore>(ctx.pool)),
        hub_(std::make_shared<JobEventHub>(ctx.config.database_url, ctx.pool)),
        worker_(std::make_shared<Worker>(store_, hub_.get(), WorkerOptionsOf(ctx.config))) {
    if (ctx.config.demo_jobs) RegisterDemoHandlers(*worker_);
    JobServiceOptions options{ctx.config.demo_jobs};
    options.projects = ctx.project_visibility;
    Serve(ctx.host,
          std::make_unique<JobServiceImpl>(std::make_shared<JobBoard>(store_), store_, hub_.get(),
                                           ctx.executor, options),
          v1::JobService::service_full_name());
  }

  ~JobsComponent() override {
    BeginDrain(absl::Now());
    Stop();
  }

  absl::Status Listen(absl::Duration timeout) {
    hub_->Start();
    // Serving before the hub listens would let watchers miss events.
    if (!hub_->WaitUntilListening(timeout)) {
      hub_->Stop();
      return absl::UnavailableError("jobs: cannot LISTEN for job events on the database");
    }
    worker_->Start();
    return absl::OkStatus();
  }

  // The job drain runs alongside the gRPC drain; watchers need the hub
  // until both are over.
  void BeginDrain(absl::Time deadline) override {
    if (drain_.joinable() || drained_) return;
    drained_ = true;
    drain_ = std::thread([worker = worker_, deadline] { worker->Stop(deadline - absl::Now()); });
  }
  void Stop() override {
    if (drain_.joinable()) drain_.join();
    hub_->Stop();
  }

 private:
  static WorkerOptions WorkerOptionsOf(const MeshConfig& config) {
    WorkerOptions options;
    options.concurrency = config.job_concurrency;
    options.lease = absl::FromChrono(config.job_lease);
    options.heartbeat = options.lease / 3;
    // Orphaned jobs run again within the lease and a second.
    options.reap = std::min(options.lease / 4, absl::Seconds(1));
    options.limits.per_owner.assign(config.job_owner_limits.begin(), config.job_owner_limits.end());
    return options;
  }

  std::shared_ptr<PgJobStore> store_;
  std::shared_ptr<JobEventHub> hub_;
  std::shared_ptr<Worker> worker_;
  std::thread drain_;
  bool drained_ = false;
};

absl::Status ReadFlags(MeshConfig& config) {
  config.demo_jobs = absl::GetFlag(FLAGS_demo_jobs);
  config.job_concurrency = absl::GetFlag(FLAGS_job_concurrency);
  config.job_lease = Millis(absl::GetFlag(FLAGS_job_lease));
  return ParseJobOwnerLimits(absl::GetFlag(FLAGS_job_owner_limits), &config.job_owner_limits);
}

}  // namespace

ComponentSpec Registration() {
  return {.name = "jobs",
          .service = v1::JobService::service_full_name(),
          .peers = {"projects"},
          .migrations = &db::JobsMigrations,
          .read_flags = &ReadFlags,
          .build = [](ComponentContext& ctx) -> absl::StatusOr<std::unique_ptr<Component>> {
            auto jobs = std::make_unique<JobsComponent>(ctx);
            if (auto s = jobs->Listen(absl::FromChrono(ctx.config.call_deadline)); !s.ok())
              return s;
            return jobs;
          }};
}

}  // namespace orchestrator::jobs
