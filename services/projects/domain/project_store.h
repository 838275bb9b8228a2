#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "orchestrator/projects/v1/projects.pb.h"
#include "services/common/pagination/page_token.h"

namespace orchestrator::projects {

struct ProjectFilter {
  std::string owner_id;                                       // "" = every owner
  v1::ProjectStatus status = v1::PROJECT_STATUS_UNSPECIFIED;  // UNSPECIFIED = any
};

// Persistence of projects and sealed secrets. Implementations return
// NOT_FOUND for missing rows and ALREADY_EXISTS for a duplicate
// (owner, name); they know nothing about callers or encryption.
class ProjectStore {
 public:
  virtual ~ProjectStore() = default;

  // Inserts `project` (id, owner, fields set). A repeated (owner,
  // request_id) returns the project the first request created.
  virtual absl::StatusOr<v1::Project> Insert(const v1::Project& project,
                                             absl::string_view request_id) = 0;
  virtual absl::StatusOr<v1::Project> Get(absl::string_view project_id) = 0;
  // Newest first.
  virtual absl::StatusOr<Page<v1::Project>> List(const ProjectFilter& filter,
                                                 const PageRequest& page) = 0;
  // Writes the named mutable fields of `project` (matched by id).
  virtual absl::StatusOr<v1::Project> Update(const v1::Project& project,
                                             const std::vector<std::string>& fields) = 0;
  virtual absl::Status Delete(absl::string_view project_id) = 0;

  virtual absl::StatusOr<v1::Secret> PutSecret(absl::string_view project_id, absl::string_view name,
                                               absl::string_view sealed_value) = 0;
  // Sorted by name.
  virtual absl::StatusOr<Page<v1::Secret>> ListSecrets(absl::string_view project_id,
                                                       const PageRequest& page) = 0;
  virtual absl::StatusOr<std::string> GetSealedSecret(absl::string_view project_id,
                                                      absl::string_view name) = 0;
  virtual absl::Status DeleteSecret(absl::string_view project_id, absl::string_view name) = 0;
};

using ProjectStorePtr = std::shared_ptr<ProjectStore>;

}  // namespace orchestrator::projects
