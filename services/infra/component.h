#pragma once

#include "services/common/component/component.h"

namespace orchestrator::infra {

// The infra component's entry in the mesh's one component list.
ComponentSpec Registration();

}  // namespace orchestrator::infra
