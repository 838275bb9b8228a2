#pragma once

#include <map>
#include <string>
#include <vector>

#include "services/common/component/component.h"

namespace orchestrator {

// The mesh's components, in the order a process builds them (and the
// reverse of the order it stops them in). The one list: --services, the
// --<name>_addr flags and --list_components (which the Helm chart's and
// the split tests' component lists are checked against) all come from it.
const std::vector<ComponentSpec>& Components();

// Their names, in the same order.
std::vector<std::string> ComponentNames();

// Every component's periodic tasks, in component order: what the scheduler
// schedules, whichever components this process hosts.
std::vector<PeriodicTask> PeriodicTasks();

// component → address, from the --<name>_addr flags that are set.
std::map<std::string, std::string> RemoteAddrsFromFlags();

}  // namespace orchestrator
