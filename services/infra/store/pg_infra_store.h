#pragma once

#include "services/common/db/migrations.h"
#include "services/common/db/pool.h"
#include "services/infra/domain/infra_store.h"

namespace orchestrator::db {
// The infra schema (store/migrations), embedded at build time.
const MigrationSet& InfraMigrations();
}  // namespace orchestrator::db

namespace orchestrator::infra {

// InfraStore on PostgreSQL (schema `infra`).
class PgInfraStore final : public InfraStore {
 public:
  explicit PgInfraStore(db::PoolPtr pool) : pool_(std::move(pool)) {}

  absl::StatusOr<v1::Server> UpsertPlatformServer(const v1::Server& server) override;
  absl::StatusOr<v1::Server> GetServer(const std::string& server_id) override;
  absl::StatusOr<Page<v1::Server>> ListServers(const ServerFilter& filter,
                                               const PageRequest& page) override;
  absl::StatusOr<v1::Server> InsertServer(const v1::Server& server,
                                          const std::string& sealed_private_key,
                                          const std::string& request_id) override;
  absl::StatusOr<std::optional<v1::Server>> FindServerByRequest(
      const std::string& owner_id, const std::string& request_id) override;
  absl::StatusOr<ServerLogin> GetServerLogin(const std::string& server_id) override;
  absl::Status SetProvisionJob(const std::string& server_id, const std::string& job_id) override;
  absl::Status SaveKnownHosts(const std::string& server_id,
                              const std::string& known_hosts) override;
  absl::StatusOr<v1::Server> ChangeServerStatus(const std::string& server_id,
                                                const ServerStatusChange& change) override;
  absl::StatusOr<std::vector<v1::Server>> ServersIn(v1::ServerKind kind,
                                                    const std::vector<v1::ServerStatus>& statuses,
                                                    int limit) override;
  absl::StatusOr<std::optional<MeshKeyPair>> GetMeshKey(const std::string& name) override;
  absl::StatusOr<MeshKeyPair> PutMeshKeyOnce(const std::string& name,
                                             const MeshKeyPair& pair) override;
  absl::StatusOr<v1::Allocation> GetAllocation(const std::string& allocation_id) override;
  absl::StatusOr<std::optional<v1::Allocation>> FindByRequest(
      const std::string& owner_id, const std::string& request_id) override;
  absl::StatusOr<std::optional<v1::Allocation>> FindByReleaseRequest(
      const std::string& owner_id, const std::string& request_id) override;
  absl::StatusOr<std::optional<v1::Allocation>> FindHeld(const std::string& project_id,
                                                         const std::string& service) override;
  absl::StatusOr<std::vector<int>> HeldPorts(const std::string& server_id) override;
  absl::StatusOr<v1::Allocation> Insert(const v1::Allocation& allocation,
                                        const std::string& request_id) override;
  absl::Status Release(const std::string& allocation_id, const std::string& request_id,
                       absl::Time now) override;
  absl::StatusOr<Page<v1::Allocation>> ListAllocations(const AllocationFilter& filter,
                                                       const PageRequest& page) override;

 private:
  db::PoolPtr pool_;
};

}  // namespace orchestrator::infra
