#pragma once

#include "services/common/component/component.h"

namespace orchestrator::scaffolder {

// The scaffolder component's entry in the mesh's one component list.
ComponentSpec Registration();

}  // namespace orchestrator::scaffolder
