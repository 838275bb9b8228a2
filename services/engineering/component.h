#pragma once

#include "services/common/component/component.h"

namespace orchestrator::engineering {

// The engineering component's entry in the mesh's one component list.
ComponentSpec Registration();

}  // namespace orchestrator::engineering
