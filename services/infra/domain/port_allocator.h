#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "orchestrator/infra/v1/infra.pb.h"
#include "services/common/auth/principal.h"
#include "services/infra/domain/diagnostics_ports.h"
#include "services/infra/domain/infra_store.h"
#include "services/infra/domain/servers.h"

namespace orchestrator::infra {

// True when `port` on `server` can be used now (for the local server:
// nothing else on the machine listens on it).
using PortProbe = std::function<bool(const v1::Server& server, int port)>;

// The public host name a project's service is routed at:
// <project>.<domain> for "web", <service>.<project>.<domain> otherwise
// (the project id lowercased, '_' as '-': a DNS label).
std::string RouteHostname(const std::string& project_id, const std::string& service,
                          const std::string& domain);

// Ports on servers, owned by the project service they are for. The caller
// is already known to see the project (checked with ProjectService as the
// caller).
class PortAllocator {
 public:
  // `releases` tells which port serves a project's LIVE release (null: no
  // such check).
  PortAllocator(InfraStorePtr store, std::shared_ptr<ServerCatalog> servers, PortProbe probe,
                std::string route_domain, std::shared_ptr<ReleaseDirectory> releases = nullptr)
      : store_(std::move(store)),
        servers_(std::move(servers)),
        probe_(std::move(probe)),
        route_domain_(std::move(route_domain)),
        releases_(std::move(releases)) {}

  // The service's allocation: the one it holds, the one this request_id
  // made, or a new one (the preferred port when it is free, else the
  // lowest free port of the server's range). RESOURCE_EXHAUSTED when the
  // range is full; FAILED_PRECONDITION when the server is not READY.
  absl::StatusOr<v1::Allocation> Allocate(const Principal& caller,
                                          const v1::AllocatePortRequest& request);

  // Frees an allocation: only its owner (an admin on another owner's is
  // PERMISSION_DENIED, anyone else NOT_FOUND), only with confirm, and the
  // port of the project's LIVE release only with force as well.
  absl::StatusOr<v1::Allocation> Release(const Principal& caller,
                                         const v1::ReleaseAllocationRequest& request,
                                         absl::Time now);

  // Frees every held allocation whose project no longer exists (the
  // periodic infra.allocations.free_orphans); returns how many. A project
  // `projects` cannot tell about now is left for the next sweep.
  absl::StatusOr<int> FreeOrphans(ProjectRegistry& projects, absl::Time now);

  // The caller's held allocations (admins: anyone's), one page.
  absl::StatusOr<v1::ListAllocationsResponse> List(const Principal& caller,
                                                   const v1::ListAllocationsRequest& request) const;

 private:
  InfraStorePtr store_;
  std::shared_ptr<ServerCatalog> servers_;
  PortProbe probe_;
  std::string route_domain_;
  std::shared_ptr<ReleaseDirectory> releases_;
};

}  // namespace orchestrator::infra
