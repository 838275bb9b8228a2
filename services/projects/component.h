#pragma once

#include "services/common/component/component.h"

namespace orchestrator::projects {

// The projects component's entry in the mesh's one component list.
ComponentSpec Registration();

}  // namespace orchestrator::projects
