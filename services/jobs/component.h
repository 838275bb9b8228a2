#pragma once

#include "services/common/component/component.h"

namespace orchestrator::jobs {

// The jobs component's entry in the mesh's one component list.
ComponentSpec Registration();

}  // namespace orchestrator::jobs
