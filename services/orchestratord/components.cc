#include "services/orchestratord/components.h"

#include "absl/flags/flag.h"
#include "services/admin/component.h"
#include "services/agents/component.h"
#include "services/deploy/component.h"
#include "services/engineering/component.h"
#include "services/infra/component.h"
#include "services/jobs/component.h"
#include "services/projects/component.h"
#include "services/scaffolder/component.h"
#include "services/scheduler/component.h"
#include "services/sessions/component.h"

// THE list: one line per component, in build order (a component after the
// peers it reaches in-process while being built). Each line gives the
// component's name (its --<name>_addr flag) and its registration.
#define ORCHESTRATOR_COMPONENTS(X)            \
  X(admin, admin::Registration())             \
  X(projects, projects::Registration())       \
  X(jobs, jobs::Registration())               \
  X(agents, agents::Registration())           \
  X(sessions, sessions::Registration())       \
  X(scaffolder, scaffolder::Registration())   \
  X(engineering, engineering::Registration()) \
  X(infra, infra::Registration())             \
  X(deploy, deploy::Registration())           \
  X(scheduler, scheduler::Registration())

#define ORCHESTRATOR_ADDR_FLAG(name, registration) \
  ABSL_FLAG(std::string, name##_addr, "",          \
            "address (host:port) of the " #name    \
            " component when it "                  \
            "is not hosted in this process");
ORCHESTRATOR_COMPONENTS(ORCHESTRATOR_ADDR_FLAG)

namespace orchestrator {
namespace {

// A registration's spec under the list's name (it also names the flag).
ComponentSpec Named(const char* name, ComponentSpec spec) {
  spec.name = name;
  return spec;
}

}  // namespace

const std::vector<ComponentSpec>& Components() {
#define ORCHESTRATOR_SPEC(name, registration) Named(#name, registration),
  static const auto* list =
      new std::vector<ComponentSpec>{ORCHESTRATOR_COMPONENTS(ORCHESTRATOR_SPEC)};
#undef ORCHESTRATOR_SPEC
  return *list;
}

std::vector<std::string> ComponentNames() {
  std::vector<std::string> names;
  for (const auto& c : Components()) names.push_back(c.name);
  return names;
}

std::vector<PeriodicTask> PeriodicTasks() {
  std::vector<PeriodicTask> tasks;
  for (const auto& c : Components()) {
    tasks.insert(tasks.end(), c.periodic_tasks.begin(), c.periodic_tasks.end());
  }
  return tasks;
}

std::map<std::string, std::string> RemoteAddrsFromFlags() {
  std::map<std::string, std::string> addrs;
#define ORCHESTRATOR_READ_ADDR(name, registration)                      \
  if (std::string a = absl::GetFlag(FLAGS_##name##_addr); !a.empty()) { \
    addrs[#name] = std::move(a);                                        \
  }
  ORCHESTRATOR_COMPONENTS(ORCHESTRATOR_READ_ADDR)
#undef ORCHESTRATOR_READ_ADDR
  return addrs;
}

}  // namespace orchestrator
