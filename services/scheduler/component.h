#pragma once

#include "services/common/component/component.h"

namespace orchestrator::scheduler {

// The scheduler component's entry in the mesh's one component list.
ComponentSpec Registration();

}  // namespace orchestrator::scheduler
