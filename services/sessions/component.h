#pragma once

#include "orchestrator/sessions/v1/sessions.grpc.pb.h"
#include "services/common/component/component.h"

namespace orchestrator::sessions {

// The sessions component's entry in the mesh's one component list.
ComponentSpec Registration();

}  // namespace orchestrator::sessions
