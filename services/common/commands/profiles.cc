#include "services/common/commands/profiles.h"

namespace orchestrator::commands {

const std::vector<Profile>& Profiles() {
  static const auto* profiles = new std::vector<Profile>{
      {"PRODUCT_OWNER",
       "a user's Product-Owner agent: everything on the user's own resources",
       {"project.*", "job.*", "engineering.*", "deploy.*", "infra.server.list", "infra.server.get",
        "infra.allocation.*", "diagnose.*", "scaffold.*", "session.respond"}},
      {"DEVELOPER",
       "a coding agent: reads the project and its diagnostics, finishes its task",
       {"project.get", "job.get", "job.list", "job.events", "job.watch", "engineering.get",
        "engineering.list", "engineering.change.get", "deploy.readiness.check",
        "deploy.release.list", "deploy.release.get", "deploy.log.get", "diagnose.*",
        "agent.task.finish"}},
      {"DEVOPS",
       "an operations agent: deploys, servers, allocations, diagnostics",
       {"project.get", "job.*", "deploy.*", "infra.*", "diagnose.*", "agent.task.finish"}},
  };
  return *profiles;
}

const Profile* FindProfile(const std::string& name) {
  for (const auto& p : Profiles()) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

}  // namespace orchestrator::commands
