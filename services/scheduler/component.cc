#include "services/scheduler/component.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "services/common/crypto/secret_box.h"
#include "services/scheduler/api/scheduler_service.h"
#include "services/scheduler/domain/scheduler.h"
#include "services/scheduler/store/pg_task_store.h"

// The flags this component reads (ReadFlags), wherever it is hosted.
ABSL_FLAG(absl::Duration, scheduler_lease_ttl, absl::Seconds(15),
          "the scheduler replicas' leader lease: a leader that has not renewed it for this long "
          "(it renews every third of it) is replaced by another replica (1s-10m)");

namespace orchestrator::scheduler {
namespace {

class SchedulerComponent final : public Component {
 public:
  static absl::StatusOr<std::unique_ptr<Component>> Build(ComponentContext& ctx) {
    auto self = std::unique_ptr<SchedulerComponent>(new SchedulerComponent());
    if (auto s = self->Init(ctx); !s.ok()) return s;
    return self;
  }

  ~SchedulerComponent() override { Stop(); }

  void Start() override { scheduler_->Start(); }
  // The lease goes at once to another replica: stop before the drain.
  void BeginDrain(absl::Time) override { scheduler_->Stop(); }
  void Stop() override {
    if (scheduler_) scheduler_->Stop();
    if (executor_) executor_->Shutdown();
  }

 private:
  absl::Status Init(ComponentContext& ctx) {
    SchedulerOptions options;
    char host[256] = {};
    ::gethostname(host, sizeof(host) - 1);
    options.replica = absl::StrCat(host, "/", ::getpid(), "/", NewId(""));
    options.lease_ttl = absl::FromChrono(ctx.config.scheduler_lease_ttl);
    options.renew_every = options.lease_ttl / 3;
    options.follower_poll = std::min(absl::Seconds(1), options.lease_ttl / 3);
    options.run_retention = absl::FromChrono(ctx.config.job_retention);
    auto store =
        std::make_shared<PgTaskStore>(ctx.pool, std::make_shared<jobs::PgJobStore>(ctx.pool));
    auto scheduler = Scheduler::Make(store, ctx.periodic_tasks, options);
    if (!scheduler.ok()) return scheduler.status();
    scheduler_ = *std::move(scheduler);
    // Before the server serves, so no call finds a task unrecorded; if the
    // database is away now, the loop records them once it answers.
    if (auto s = scheduler_->EnsureTasks(); !s.ok()) {
      spdlog::warn("scheduler: recording the periodic tasks: {}", s.ToString());
    }
    executor_ = std::make_shared<BoundedExecutor>(2, 128);
    Serve(ctx.host, std::make_unique<SchedulerServiceImpl>(scheduler_, executor_),
          v1::SchedulerService::service_full_name());
    return absl::OkStatus();
  }

  std::shared_ptr<Scheduler> scheduler_;
  BoundedExecutorPtr executor_;
};

absl::Status ReadFlags(MeshConfig& config) {
  const absl::Duration ttl = absl::GetFlag(FLAGS_scheduler_lease_ttl);
  if (ttl < absl::Seconds(1) || ttl > absl::Minutes(10)) {
    return absl::InvalidArgumentError("--scheduler_lease_ttl: from 1s to 10m");
  }
  config.scheduler_lease_ttl = Millis(ttl);
  return absl::OkStatus();
}

}  // namespace

ComponentSpec Registration() {
  return {.name = "scheduler",
          .service = v1::SchedulerService::service_full_name(),
          // The queue its runs' jobs go into (the jobs schema), and
          // the components running them (declared with their tasks).
          .peers = {"jobs"},
          .migrations = &db::SchedulerMigrations,
          .read_flags = &ReadFlags,
          .build = &SchedulerComponent::Build};
}

}  // namespace orchestrator::scheduler
