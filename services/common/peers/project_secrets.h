#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "services/common/auth/mesh_identity.h"

namespace orchestrator {

// A project and its secrets, asked of ProjectService as the mesh acting for
// the project's owner: the project a deploy or an engineering run works on,
// what the deploy component passes to a container and what the infra
// component redacts from its logs.

// The project (NOT_FOUND when it is not the owner's).
absl::StatusOr<projects::v1::Project> GetProjectAs(
    projects::v1::ProjectService::StubInterface& projects, const MeshCredential& mesh,
    std::chrono::milliseconds deadline, const std::string& owner_id, const std::string& project_id);

// The names of the project's secrets (every page).
absl::StatusOr<std::vector<std::string>> ListSecretNames(
    projects::v1::ProjectService::StubInterface& projects, const MeshCredential& mesh,
    std::chrono::milliseconds deadline, const std::string& owner_id, const std::string& project_id);

// Their values by name (RevealSecrets is mesh-only), asked in batches of
// what one request may name.
absl::StatusOr<std::map<std::string, std::string>> RevealSecretValues(
    projects::v1::ProjectService::StubInterface& projects, const MeshCredential& mesh,
    std::chrono::milliseconds deadline, const std::string& owner_id, const std::string& project_id,
    const std::vector<std::string>& names);

}  // namespace orchestrator
