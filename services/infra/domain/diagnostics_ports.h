#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "orchestrator/deploy/v1/deploy.pb.h"
#include "services/common/containers/container_engine.h"

namespace orchestrator::infra {

// What the diagnostics need of DeployService, which owns a project's
// releases: asked acting for the project's owner (peers/, over its stub).
class ReleaseDirectory {
 public:
  virtual ~ReleaseDirectory() = default;
  // The project's LIVE release; none when nothing is deployed.
  virtual absl::StatusOr<std::optional<deploy::v1::Release>> Live(
      const std::string& owner_id, const std::string& project_id) = 0;
  // The project's latest releases, newest first, at most `limit`.
  virtual absl::StatusOr<std::vector<deploy::v1::Release>> Latest(const std::string& owner_id,
                                                                  const std::string& project_id,
                                                                  int limit) = 0;
};

// The values of a project's secrets (ProjectService, acting for the owner):
// its containers have them in their environment, and what the diagnostics
// send must not show them.
class SecretValues {
 public:
  virtual ~SecretValues() = default;
  virtual absl::StatusOr<std::vector<std::string>> Values(const std::string& owner_id,
                                                          const std::string& project_id) = 0;
};

// Whether a project still exists (ProjectService, acting for its owner):
// false once it was deleted (NOT_FOUND).
class ProjectRegistry {
 public:
  virtual ~ProjectRegistry() = default;
  virtual absl::StatusOr<bool> Exists(const std::string& owner_id,
                                      const std::string& project_id) = 0;
};

// One GET through the router (Caddy), as a browser asking for `host` would:
// the status code, or UNAVAILABLE when nothing answered within `timeout`
// (adapters/).
class RouteProbe {
 public:
  virtual ~RouteProbe() = default;
  virtual absl::StatusOr<int> Get(const std::string& host, const std::string& path,
                                  absl::Duration timeout) = 0;
};

// The server a release runs on, as the diagnostics read it: its container
// engine, and a probe through its router (adapters/: the local ones, or an
// SSH server's through its tunnel).
struct ReleaseSite {
  containers::ContainerEnginePtr engine;
  std::shared_ptr<RouteProbe> route;
  std::shared_ptr<const void> connection;  // keeps the two reachable
};
class ReleaseSites {
 public:
  virtual ~ReleaseSites() = default;
  // `server_id`'s ("": the local server); UNAVAILABLE when it cannot be
  // reached now.
  virtual absl::StatusOr<ReleaseSite> For(const std::string& server_id) = 0;
};

}  // namespace orchestrator::infra
