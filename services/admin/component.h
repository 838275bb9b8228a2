#pragma once

#include "services/common/component/component.h"

namespace orchestrator::admin {

// The admin component's entry in the mesh's one component list.
ComponentSpec Registration();

}  // namespace orchestrator::admin
