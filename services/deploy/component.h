#pragma once

#include "services/common/component/component.h"

namespace orchestrator::deploy {

// The deploy component's entry in the mesh's one component list.
ComponentSpec Registration();

}  // namespace orchestrator::deploy
