#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"
#include "orchestrator/deploy/v1/deploy.pb.h"
#include "services/common/containers/container_engine.h"
#include "services/common/router/router.h"
#include "services/deploy/domain/deploy_fixer.h"
#include "services/deploy/domain/deploy_ports.h"
#include "services/deploy/domain/release_store.h"
#include "services/jobs/domain/job_hooks.h"

namespace orchestrator::deploy {

using jobs::JobHooks;

// The job being run, as a deploy needs it.
struct DeployJob {
  std::string id;
  std::string owner_id;
  std::string project_id;
  std::string commit_sha;         // deploy: resolved when the request was taken
  std::string target_release_id;  // rollback: the release made live again
  // An automatic rollback: only while this release is still the LIVE one
  // (a deploy that came first has replaced it: nothing to undo).
  std::string only_while_live;
  // deploy: the server asked for ("": where the project's ports are).
  std::string server_id;
  // deploy: the fix job whose change it deploys (kAfterFixParam).
  std::string after_fix;
};

// How a deploy's error starts when its release failed the health gate.
inline constexpr char kHealthGateFailed[] = "health gate failed";

struct DeployerOptions {
  std::string work_dir;  // checkouts, one per running job
  // A release's URL is <url_scheme><host name><its server's port suffix>,
  // e.g. "http://" and ":8090".
  std::string url_scheme = "http://";
  // The local images to build on, by the public default of the build
  // file's `ARG BASE_IMAGE` (no registry is reachable on one machine).
  std::map<std::string, std::string> base_images;
  // After the switch, how long the old container keeps serving the requests
  // it has, and then how long it gets to stop.
  absl::Duration drain = absl::Seconds(2);
  absl::Duration stop_grace = absl::Seconds(10);
  // Images kept per project for rollbacks (the live one's, and those of the
  // releases it superseded last).
  int keep_images = 3;
  // This installation (its database's), on every container and image it
  // makes: a container engine may serve others too.
  std::string installation;
  // Told when a deploy's release failed the health gate for good; what it
  // returns (a sentence, e.g. the fix it started) joins the job's error.
  std::function<std::string(const FailedRelease& failed)> on_failed_gate = nullptr;
};

// The labels the containers and images of a deploy carry.
inline constexpr char kProjectLabel[] = "orchestrator.project";
inline constexpr char kReleaseLabel[] = "orchestrator.release";
inline constexpr char kOwnerLabel[] = "orchestrator.owner";
inline constexpr char kInstallationLabel[] = "orchestrator.installation";

// The route a project's LIVE release is reached by.
router::Route RouteOf(const v1::Release& release, const std::string& hostname);
// "orchestrator-<project, lowercased, '_' as '-'>".
std::string RouteIdOf(const std::string& project_id);

// The release a rollback makes live again when none is named: the one
// live before the current one (FAILED_PRECONDITION when there is none).
absl::StatusOr<v1::Release> PreviousRelease(ReleaseStore& releases, const std::string& project_id);

// Deploys and rollbacks: builds (deploy) or takes the kept image (rollback),
// starts the new container next to the live one, gates on its health,
// switches the route, drains and removes the old container, and prunes old
// images. A job run again after a crash finds its release and goes on.
class Deployer {
 public:
  // `route_mu` is held while a release goes LIVE and its route switches,
  // and by the RouteReconciler while it makes the routes those of the LIVE
  // releases, so that neither undoes the other.
  Deployer(std::shared_ptr<ProjectDirectory> projects, std::shared_ptr<SourceRepository> source,
           std::shared_ptr<PortAllocations> allocations, ReleaseStorePtr releases,
           std::shared_ptr<ServerTargets> servers, std::shared_ptr<absl::Mutex> route_mu,
           DeployerOptions options)
      : projects_(std::move(projects)),
        source_(std::move(source)),
        allocations_(std::move(allocations)),
        releases_(std::move(releases)),
        servers_(std::move(servers)),
        route_mu_(std::move(route_mu)),
        options_(std::move(options)) {}

  // Result: {release_id, url, version, commit_sha}.
  absl::StatusOr<google::protobuf::Struct> Deploy(const DeployJob& job, const JobHooks& hooks);
  absl::StatusOr<google::protobuf::Struct> Rollback(const DeployJob& job, const JobHooks& hooks);

 private:
  // The job's release (made at its first attempt): LIVE when an attempt
  // before a crash got that far, else DEPLOYING, with the project's other
  // DEPLOYING releases (whose deploys ended) failed.
  absl::StatusOr<v1::Release> BeginRelease(const DeployJob& job, const std::string& commit_sha,
                                           const std::string& rollback_of);
  // From a release with its image: start, gate, switch, drain, prune; a
  // failure the job will not retry marks the release FAILED and removes its
  // container.
  absl::StatusOr<google::protobuf::Struct> Launch(const DeployJob& job, const ServerTarget& at,
                                                  const PortSlots& slots,
                                                  const projects::v1::Project& project,
                                                  const v1::Release& release,
                                                  const std::string& image, const JobHooks& hooks);
  absl::StatusOr<google::protobuf::Struct> LaunchSteps(const DeployJob& job, const ServerTarget& at,
                                                       const PortSlots& slots,
                                                       const projects::v1::Project& project,
                                                       v1::Release release,
                                                       const std::string& image,
                                                       const JobHooks& hooks);
  // The release LIVE and its route switched (again, after a crash), then
  // the old containers drained and the old images pruned.
  absl::StatusOr<google::protobuf::Struct> Switch(const DeployJob& job, const ServerTarget& at,
                                                  v1::Release release, const std::string& hostname,
                                                  const JobHooks& hooks);
  // For a job whose release went LIVE before a crash: the same last steps.
  absl::StatusOr<google::protobuf::Struct> Resume(const DeployJob& job, v1::Release release,
                                                  const JobHooks& hooks);
  // Builds the project's image at the commit unless it exists; its tag.
  absl::StatusOr<std::string> EnsureImage(const DeployJob& job, const ServerTarget& at,
                                          const projects::v1::Project& project,
                                          const JobHooks& hooks);
  // OK once health_path answers 200; FAILED_PRECONDITION with why not.
  absl::Status HealthGate(const ServerTarget& at, const common::v1::RunContract& contract, int port,
                          const std::string& container, const JobHooks& hooks);
  // The project's containers other than `keep`, stopped and removed.
  void RetireOthers(const ServerTarget& at, const std::string& project_id, const std::string& keep,
                    const JobHooks& hooks);
  void PruneImages(const ServerTarget& at, const std::string& project_id,
                   const std::string& live_image, const JobHooks& hooks);
  // The last lines a container wrote, for a failure's message.
  std::string LastLines(const ServerTarget& at, const std::string& container, int lines);
  // The project's ports and the server they are on.
  struct Placement {
    PortSlots slots;
    ServerTarget at;
  };
  absl::StatusOr<Placement> Place(const DeployJob& job, const std::string& server_id);

  std::shared_ptr<ProjectDirectory> projects_;
  std::shared_ptr<SourceRepository> source_;
  std::shared_ptr<PortAllocations> allocations_;
  ReleaseStorePtr releases_;
  std::shared_ptr<ServerTargets> servers_;
  std::shared_ptr<absl::Mutex> route_mu_;
  DeployerOptions options_;
};

}  // namespace orchestrator::deploy
