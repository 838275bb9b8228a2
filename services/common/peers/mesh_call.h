#pragma once

#include <grpcpp/client_context.h>

#include <chrono>

#include "absl/strings/string_view.h"
#include "services/common/auth/mesh_identity.h"

namespace orchestrator {

// Prepares a call from one component to another as the mesh: the mesh
// credential as bearer token, acting for the user `act_for` when set (the
// callee then scopes the call to that user's resources), and a deadline
// `timeout` from now. Every call between components goes through here or
// forwards its caller's own credentials (CredentialsOf).
void PrepareMeshCall(grpc::ClientContext& context, const MeshCredential& mesh,
                     std::chrono::milliseconds timeout, absl::string_view act_for = "");

}  // namespace orchestrator
