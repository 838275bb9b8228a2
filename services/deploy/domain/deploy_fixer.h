#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "google/protobuf/struct.pb.h"
#include "orchestrator/jobs/v1/jobs.pb.h"
#include "services/deploy/domain/deploy_ports.h"
#include "services/deploy/domain/release_store.h"
#include "services/jobs/domain/job_hooks.h"

namespace orchestrator::deploy {

// The job kind of a fix after a failed deploy (see DeployFixer).
inline constexpr char kFixJobKind[] = "deploy.fix";
// What a health gate's error says before the container's last lines.
inline constexpr char kLastLinesMark[] = "; its last lines:";
// A deploy job's param: the fix whose change it deploys. Such a deploy is
// not fixed again when it fails too.
inline constexpr char kAfterFixParam[] = "after_fix";

// The engineering run a fix starts, and the redeploy of its change: the
// engineering and jobs components, through their stubs and store.
class FixPeers {
 public:
  virtual ~FixPeers() = default;
  // An engineering run of the owner's project with `instructions` as its
  // task, as the platform (the fix job `fix_job_id` is its origin);
  // idempotent by `request_id`. Returns its job.
  virtual absl::StatusOr<jobs::v1::Job> StartEngineering(const std::string& owner_id,
                                                         const std::string& project_id,
                                                         const std::string& instructions,
                                                         const std::string& request_id,
                                                         const std::string& fix_job_id) = 0;
  virtual absl::StatusOr<jobs::v1::Job> GetJob(const std::string& job_id) = 0;
  // A deploy of `commit_sha` for the fix `fix_job_id`, after its
  // engineering job `engineering_job_id`; idempotent by `request_id`.
  virtual absl::StatusOr<jobs::v1::Job> Redeploy(
      const std::string& owner_id, const std::string& project_id, const std::string& commit_sha,
      const std::string& request_id, const std::string& fix_job_id,
      const std::string& engineering_job_id, const std::string& started_because) = 0;
};

// What starts a fix: a release that failed its health gate as it was
// deployed, or a live one rolled back for failing its health checks.
struct FailedRelease {
  v1::Release release;
  std::string why;           // for people: what happened ("failed its health gate: …")
  bool came_of_fix = false;  // its deploy was a fix's redeploy (kAfterFixParam)
  // The release that was good before it ("": the one live when the fix
  // runs). A rollback names its target: the failing one is still LIVE then.
  std::string good_release_id = "";
};

// A fix job to queue; nullopt when none is due (the project opted out, or
// the release came of a fix already).
struct FixJobPlan {
  std::string request_id;  // "fix-<release>": once per failing release
  google::protobuf::Struct params;
};

// The feedback loop: a failed deploy becomes one engineering run whose task
// carries the failure, and a redeploy of its change when it passes. Bounded
// to one fix per failing release (the fix job's request id), and none for
// a release that a fix's redeploy made; off for a project with
// DEPLOY_FIX_OFF.
class DeployFixer {
 public:
  DeployFixer(std::shared_ptr<ProjectDirectory> projects, std::shared_ptr<ReleaseStore> releases,
              std::shared_ptr<FixPeers> peers, absl::Duration poll = absl::Seconds(1))
      : projects_(std::move(projects)),
        releases_(std::move(releases)),
        peers_(std::move(peers)),
        poll_(poll) {}

  // Whether `failed` gets a fix, and the job's request id and params.
  absl::StatusOr<std::optional<FixJobPlan>> Plan(const FailedRelease& failed);

  // The fix job: starts (or finds again, after a restart) the engineering
  // run, waits for it, and queues the redeploy of its commit. FAILED when
  // the run did not pass (the live release, if any, stays).
  absl::StatusOr<google::protobuf::Struct> Run(const jobs::v1::Job& job,
                                               const jobs::JobHooks& hooks);

  // The engineering task of a fix: what failed (quoted, marked as not
  // instructions), what to make work, the failing and the last good commit.
  static std::string TaskOf(const v1::Release& failing, const std::optional<v1::Release>& live,
                            const std::string& why);

 private:
  std::shared_ptr<ProjectDirectory> projects_;
  std::shared_ptr<ReleaseStore> releases_;
  std::shared_ptr<FixPeers> peers_;
  absl::Duration poll_;
};

}  // namespace orchestrator::deploy
