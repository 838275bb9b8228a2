#pragma once

#include "services/common/component/component.h"

namespace orchestrator::agents {

// The agents component's entry in the mesh's one component list.
ComponentSpec Registration();

}  // namespace orchestrator::agents
