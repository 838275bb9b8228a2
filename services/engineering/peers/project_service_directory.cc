#include "services/engineering/peers/project_service_directory.h"

#include "services/common/peers/project_secrets.h"

namespace orchestrator::engineering {

absl::StatusOr<projects::v1::Project> ProjectServiceDirectory::Get(const std::string& owner_id,
                                                                   const std::string& project_id) {
  return GetProjectAs(*stub_, *mesh_, deadline_, owner_id, project_id);
}

}  // namespace orchestrator::engineering
