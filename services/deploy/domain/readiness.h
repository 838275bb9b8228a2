#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "orchestrator/deploy/v1/deploy.pb.h"
#include "services/deploy/domain/deploy_ports.h"

namespace orchestrator::deploy {

// The one definition of "ready to deploy", used by CheckReadiness and by
// TriggerDeploy (which refuses, naming the failing checks, when a check
// failed).
struct Readiness {
  v1::CheckReadinessResponse report;
  // What the checks found, for the deploy that follows.
  projects::v1::Project project;
  std::string commit_sha;  // the one asked for, or the default branch's head
  PortSlots slots;

  // FAILED_PRECONDITION listing the failed checks and their remedies; OK
  // when ready.
  absl::Status AsStatus() const;
};

// True when a deploy or rollback of the project is queued or running.
using DeployInFlight = std::function<absl::StatusOr<bool>(const std::string& project_id)>;

class ReadinessChecker {
 public:
  ReadinessChecker(std::shared_ptr<ProjectDirectory> projects,
                   std::shared_ptr<SourceRepository> source,
                   std::shared_ptr<PortAllocations> allocations,
                   std::shared_ptr<ServerTargets> servers, DeployInFlight in_flight)
      : projects_(std::move(projects)),
        source_(std::move(source)),
        allocations_(std::move(allocations)),
        servers_(std::move(servers)),
        in_flight_(std::move(in_flight)) {}

  // Runs every check for `owner_id`'s project; errors only for what is not
  // a check (the project is not the owner's: NOT_FOUND). `commit_sha` ""
  // means the default branch's head; `server_id` "" where the project's
  // ports are (the local server for a first deploy).
  absl::StatusOr<Readiness> Check(const std::string& owner_id, const std::string& project_id,
                                  const std::string& commit_sha,
                                  const std::string& server_id = "") const;

 private:
  std::shared_ptr<ProjectDirectory> projects_;
  std::shared_ptr<SourceRepository> source_;
  std::shared_ptr<PortAllocations> allocations_;
  std::shared_ptr<ServerTargets> servers_;
  DeployInFlight in_flight_;
};

}  // namespace orchestrator::deploy
