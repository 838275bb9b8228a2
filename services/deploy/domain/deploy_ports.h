#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "orchestrator/infra/v1/infra.pb.h"
#include "orchestrator/projects/v1/projects.pb.h"
#include "services/common/containers/container_engine.h"
#include "services/common/router/router.h"

namespace orchestrator::deploy {

// What deploy needs of ProjectService, acting for the project's owner
// (peers/, over its stub).
class ProjectDirectory {
 public:
  virtual ~ProjectDirectory() = default;
  virtual absl::StatusOr<projects::v1::Project> Get(const std::string& owner_id,
                                                    const std::string& project_id) = 0;
  // The names of the project's secrets.
  virtual absl::StatusOr<std::vector<std::string>> SecretNames(const std::string& owner_id,
                                                               const std::string& project_id) = 0;
  // Their values (a mesh-only call): for the container's environment.
  virtual absl::StatusOr<std::map<std::string, std::string>> RevealSecrets(
      const std::string& owner_id, const std::string& project_id,
      const std::vector<std::string>& names) = 0;
};

// The two ports a project's releases alternate between on their server, so
// that a new release starts next to the live one (InfraService, acting for
// the owner; peers/). `live` carries the project's host name.
struct PortSlots {
  infra::v1::Allocation live;  // service "web"
  infra::v1::Allocation next;  // service "web-next"
};
class PortAllocations {
 public:
  virtual ~PortAllocations() = default;
  // Allocated when missing, on `server_id` ("": where the project's ports
  // are, else the local server); ports held on another server are
  // FAILED_PRECONDITION.
  virtual absl::StatusOr<PortSlots> Slots(const std::string& owner_id,
                                          const std::string& project_id,
                                          const std::string& server_id = "") = 0;
};

// The project's code (git, peers/).
class SourceRepository {
 public:
  virtual ~SourceRepository() = default;
  // The commit the repository's default branch (its HEAD) points at.
  virtual absl::StatusOr<std::string> Head(const std::string& url) = 0;
  // `commit` of `url` checked out into `dir` (must not exist). NOT_FOUND
  // when the repository has no such commit.
  virtual absl::Status Checkout(const std::string& url, const std::string& commit,
                                const std::string& dir) = 0;
};

// One HTTP GET of http://127.0.0.1:<port><path> on the release's server:
// the status code, UNAVAILABLE when nothing answered within `timeout`, or
// FAILED_PRECONDITION when the server itself could not be reached (which
// says nothing of the release).
class HealthProbe {
 public:
  virtual ~HealthProbe() = default;
  virtual absl::StatusOr<int> Get(int port, const std::string& path, absl::Duration timeout) = 0;
};

// What a deploy drives on the server a release runs on: its container
// engine, its router, a probe of its loopback ports, and how its URLs end.
struct ServerTarget {
  std::string server_id;  // "" for the local server until its id is known
  std::string server_name;
  containers::ContainerEnginePtr engine;
  std::shared_ptr<router::Router> router;
  std::shared_ptr<HealthProbe> probe;
  // After a release's host name in its URL: ":8090", "" for port 80.
  std::string url_port_suffix;
  // Reached over SSH: images the local engine has (the template bases) are
  // copied there before a build.
  bool remote = false;
  // What keeps engine, router and probe reachable (an SSH tunnel): shared
  // by every copy, so a tunnel replaced meanwhile lasts while it is used.
  std::shared_ptr<const void> connection;
};

// The servers deploys run on (adapters/: the local engine and Caddy, or a
// remote server's reached over SSH with what InfraService hands out).
class ServerTargets {
 public:
  virtual ~ServerTargets() = default;
  // `server_id`'s ("": the local server), acting for `owner_id`:
  // FAILED_PRECONDITION when it is not READY, UNAVAILABLE when it cannot be
  // reached now.
  virtual absl::StatusOr<ServerTarget> For(const std::string& owner_id,
                                           const std::string& server_id) = 0;
  // The machine the mesh runs on.
  virtual const ServerTarget& Local() const = 0;
};

}  // namespace orchestrator::deploy
