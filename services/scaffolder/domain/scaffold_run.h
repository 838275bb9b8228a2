#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"
#include "orchestrator/projects/v1/projects.pb.h"
#include "orchestrator/scaffolder/v1/scaffolder.pb.h"
#include "services/common/git/git_host.h"
#include "services/scaffolder/domain/answers.h"
#include "services/scaffolder/domain/template_catalog.h"

namespace orchestrator::scaffolder {

// What the scaffolder needs of ProjectService, acting for the project's
// owner (implemented over its stub in peers/).
class ProjectDirectory {
 public:
  virtual ~ProjectDirectory() = default;
  virtual absl::StatusOr<projects::v1::Project> Get(const std::string& owner_id,
                                                    const std::string& project_id) = 0;
  // Records the scaffold's outcome on the project in one update:
  // repository_url, template id and version, answers and run contract.
  virtual absl::Status Record(const std::string& owner_id,
                              const projects::v1::Project& outcome) = 0;
  virtual absl::Status StoreSecret(const std::string& owner_id, const std::string& project_id,
                                   const std::string& name, const std::string& value) = 0;
};

// The repositories scaffold jobs created, written before the host is
// asked, so that a job run again after a crash reuses its repository and
// never makes two (implemented in store/).
class RepositoryLedger {
 public:
  struct Entry {
    std::string job_id;
    std::string project_id;
    std::string host;  // GitHost::Kind()
    std::string name;
  };
  virtual ~RepositoryLedger() = default;
  virtual absl::StatusOr<std::optional<Entry>> Find(const std::string& job_id) = 0;
  // Remembers that `entry.job_id` is about to create `entry.name`.
  virtual absl::Status Intend(const Entry& entry) = 0;
};

// The commit a scaffold makes of its rendered tree (libgit2 in production);
// the push and its check go through the GitHost.
class GitWorktree {
 public:
  virtual ~GitWorktree() = default;
  virtual absl::StatusOr<std::string> CommitAll(const std::string& dir, const std::string& message,
                                                absl::Time when) = 0;
};

// A Scaffold request after its synchronous checks: what the job runs.
struct ScaffoldPlan {
  std::string project_id;
  std::string template_id;
  v1::TemplateSource source;
  std::map<std::string, std::string> answers;  // as given; secrets removed
  bool replace_repository = false;
  std::string repository_name;
  // Secret answers: stored as project secrets when the request is taken.
  std::map<std::string, std::string> secrets;

  google::protobuf::Struct ToParams() const;
  static absl::StatusOr<ScaffoldPlan> FromParams(const std::string& project_id,
                                                 const google::protobuf::Struct& params);
};

// The job being run, as the scaffold needs it.
struct ScaffoldJob {
  std::string id;
  std::string owner_id;
  absl::Time create_time;  // the commit's time: a re-run makes the same commit
  ScaffoldPlan plan;
};

using ProgressFn = std::function<void(int percent, const std::string& message)>;

// Makes projects' repositories from templates: the checks a Scaffold
// request gets at once, and the job's steps (render, commit, create the
// repository, push, verify, record).
class Scaffolder {
 public:
  struct Options {
    std::string work_dir;  // scratch trees, one per running job
    std::string default_branch = "main";
  };
  Scaffolder(TemplateCatalogPtr catalog, git::GitHostPtr host,
             std::shared_ptr<ProjectDirectory> projects, std::shared_ptr<RepositoryLedger> ledger,
             std::shared_ptr<GitWorktree> git, Options options);

  // The request's checks: the template exists, the project is the
  // owner's and has no repository (unless replacing), the answers pass.
  absl::StatusOr<ScaffoldPlan> Prepare(const std::string& owner_id,
                                       const v1::ScaffoldRequest& request) const;

  // Runs the job; returns its result {repository_url, commit_sha, ...}.
  absl::StatusOr<google::protobuf::Struct> Run(const ScaffoldJob& job, const ProgressFn& progress,
                                               const std::function<bool()>& cancelled) const;

  const TemplateCatalog& catalog() const { return *catalog_; }
  const git::GitHost& host() const { return *host_; }

 private:
  // The repository this job makes (or made before a crash).
  absl::StatusOr<git::Repository> EnsureRepository(const ScaffoldJob& job,
                                                   const projects::v1::Project& project) const;

  TemplateCatalogPtr catalog_;
  git::GitHostPtr host_;
  std::shared_ptr<ProjectDirectory> projects_;
  std::shared_ptr<RepositoryLedger> ledger_;
  std::shared_ptr<GitWorktree> git_;
  Options options_;
};

}  // namespace orchestrator::scaffolder
