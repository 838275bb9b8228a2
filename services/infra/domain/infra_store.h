#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "orchestrator/infra/v1/infra.pb.h"
#include "services/common/pagination/page_token.h"

namespace orchestrator::infra {

// The owner of the platform's own servers (the machine the mesh runs on):
// every user sees and deploys to them.
inline constexpr char kPlatformOwner[] = "";

struct ServerFilter {
  std::string owner_id;  // also sees the platform's servers; "" with all_owners = everyone's
  bool all_owners = false;
};

// What the mesh logs in to an SSH server with: never part of a v1::Server.
struct ServerLogin {
  std::string sealed_private_key;  // base64 of SecretBox::Seal
  std::string known_hosts;         // ssh's known_hosts lines accepted so far
};

// A server's new status; `provision_job_id` and `seen` (last_seen_time =
// now) only when set.
struct ServerStatusChange {
  v1::ServerStatus status = v1::SERVER_STATUS_UNSPECIFIED;
  std::string reason;
  std::optional<std::string> provision_job_id;
  bool seen = false;
  // Only when the server is in one of these now (empty: whatever it is);
  // else NOT_FOUND, nothing changed.
  std::vector<v1::ServerStatus> only_from;
};

// The mesh's own SSH key pair.
struct MeshKeyPair {
  std::string public_key;          // one authorized_keys line
  std::string sealed_private_key;  // base64 of SecretBox::Seal
};

struct AllocationFilter {
  std::string owner_id;  // "" = everyone's
  std::string project_id;
  std::string server_id;
};

// Persistence of servers and port allocations. NOT_FOUND for missing rows,
// ALREADY_EXISTS when an allocation's port or service is held already (or
// its request_id was used); knows nothing of callers.
class InfraStore {
 public:
  virtual ~InfraStore() = default;

  // The platform's server named `server.name()`, made or brought up to date
  // (kind, port range, status READY); returns it.
  virtual absl::StatusOr<v1::Server> UpsertPlatformServer(const v1::Server& server) = 0;
  virtual absl::StatusOr<v1::Server> GetServer(const std::string& server_id) = 0;
  // By name, platform servers first.
  virtual absl::StatusOr<Page<v1::Server>> ListServers(const ServerFilter& filter,
                                                       const PageRequest& page) = 0;

  // Stores a server a user registers (id, owner, name, kind, address,
  // user, range, status set); ALREADY_EXISTS when the owner has one of
  // that name or used `request_id` ("" for none) already.
  virtual absl::StatusOr<v1::Server> InsertServer(const v1::Server& server,
                                                  const std::string& sealed_private_key,
                                                  const std::string& request_id) = 0;
  // The server `owner_id` registered with `request_id`, if any.
  virtual absl::StatusOr<std::optional<v1::Server>> FindServerByRequest(
      const std::string& owner_id, const std::string& request_id) = 0;
  virtual absl::StatusOr<ServerLogin> GetServerLogin(const std::string& server_id) = 0;
  virtual absl::Status SetProvisionJob(const std::string& server_id, const std::string& job_id) = 0;
  virtual absl::Status SaveKnownHosts(const std::string& server_id,
                                      const std::string& known_hosts) = 0;
  virtual absl::StatusOr<v1::Server> ChangeServerStatus(const std::string& server_id,
                                                        const ServerStatusChange& change) = 0;
  // Every owner's servers of `kind` in one of `statuses`, updated longest ago first, at most
  // `limit`.
  virtual absl::StatusOr<std::vector<v1::Server>> ServersIn(
      v1::ServerKind kind, const std::vector<v1::ServerStatus>& statuses, int limit) = 0;

  // The key pair stored as `name`, if any.
  virtual absl::StatusOr<std::optional<MeshKeyPair>> GetMeshKey(const std::string& name) = 0;
  // Stores `pair` as `name` unless one is stored already; returns the one
  // stored (another process may have been first).
  virtual absl::StatusOr<MeshKeyPair> PutMeshKeyOnce(const std::string& name,
                                                     const MeshKeyPair& pair) = 0;

  virtual absl::StatusOr<v1::Allocation> GetAllocation(const std::string& allocation_id) = 0;
  // The allocation (held or released) a request made, if any.
  virtual absl::StatusOr<std::optional<v1::Allocation>> FindByRequest(
      const std::string& owner_id, const std::string& request_id) = 0;
  // The allocation released by a request, if any.
  virtual absl::StatusOr<std::optional<v1::Allocation>> FindByReleaseRequest(
      const std::string& owner_id, const std::string& request_id) = 0;
  // The allocation a project's service holds, if any.
  virtual absl::StatusOr<std::optional<v1::Allocation>> FindHeld(const std::string& project_id,
                                                                 const std::string& service) = 0;
  // The ports held on a server, ascending.
  virtual absl::StatusOr<std::vector<int>> HeldPorts(const std::string& server_id) = 0;
  // Stores a new allocation (id, owner, project, service, server, port,
  // hostname set); `request_id` "" for none.
  virtual absl::StatusOr<v1::Allocation> Insert(const v1::Allocation& allocation,
                                                const std::string& request_id) = 0;
  // Marks a held allocation released; NOT_FOUND when it is not held.
  virtual absl::Status Release(const std::string& allocation_id, const std::string& request_id,
                               absl::Time now) = 0;
  // Held allocations, by id.
  virtual absl::StatusOr<Page<v1::Allocation>> ListAllocations(const AllocationFilter& filter,
                                                               const PageRequest& page) = 0;
};

using InfraStorePtr = std::shared_ptr<InfraStore>;

}  // namespace orchestrator::infra
