#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace orchestrator::git {

// A repository on a git host, as everyone reaches it: sandboxes, users and
// deploys clone and push by `clone_url` (credentials travel separately,
// never in the URL).
struct Repository {
  std::string clone_url;  // e.g. http://127.0.0.1:50080/git/<project>.git
  std::string web_url;    // for people; "" when the host has no web pages
  std::string full_name;  // the host's name for it, e.g. "alice/shop"
};

// What to create.
struct NewRepository {
  std::string name;         // the repository's name on the host
  std::string project_id;   // the project it belongs to
  std::string description;  // for people
};

// How the mesh authenticates to a host's git smart HTTP: an HTTP header
// given to git as `-c http.extraHeader=<header>`; never part of a URL,
// argv of a process a user can see, or a log line.
struct GitCredentials {
  std::string http_header;  // e.g. "Authorization: Basic ...", "" for none
};

// Where projects' repositories live (DESIGN.md "Outside systems": local bare
// repositories served by the mesh over smart HTTP, or GitHub). The one
// interface the scaffolder (and later engineering and deploy) use to make a
// repository and to push to it. Implementations are safe to call from many
// threads.
class GitHost {
 public:
  virtual ~GitHost() = default;

  // "local" or "github": recorded with what was made, named in errors.
  virtual std::string Kind() const = 0;

  // The repository named `name`, if it exists (whoever made it).
  virtual absl::StatusOr<std::optional<Repository>> Find(const std::string& name) = 0;

  // Creates an empty repository. ALREADY_EXISTS when the name is taken;
  // UNAVAILABLE when the host cannot be reached (retry); PERMISSION_DENIED /
  // FAILED_PRECONDITION with the host's message when it refuses.
  virtual absl::StatusOr<Repository> Create(const NewRepository& repository) = 0;

  // Credentials that may push to (and fetch from) `repository` by its
  // clone_url.
  virtual absl::StatusOr<GitCredentials> PushCredentials(const Repository& repository) = 0;

  // Pushes `branch` of the work tree at `dir` to the same branch of
  // `repository` (no force), the way this host is reached best from the
  // mesh. FAILED_PRECONDITION with the host's message when it refuses.
  virtual absl::Status Push(const Repository& repository, const std::string& dir,
                            const std::string& branch) = 0;

  // The commit `branch` of `repository` points at, as the host has it now
  // (NOT_FOUND when there is no such branch): how a push is verified.
  virtual absl::StatusOr<std::string> Head(const Repository& repository,
                                           const std::string& branch) = 0;
};

using GitHostPtr = std::shared_ptr<GitHost>;

}  // namespace orchestrator::git
