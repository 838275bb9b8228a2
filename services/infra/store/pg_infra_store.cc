#include "services/infra/store/pg_infra_store.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "services/common/crypto/secret_box.h"

namespace orchestrator::infra {
namespace {

using google::protobuf::util::TimeUtil;

#define SERVER_COLUMNS                                                                      \
  "id, owner_id, name, kind, address, ssh_user, port_range_start, port_range_end, status, " \
  "status_reason, provision_job_id, (extract(epoch FROM create_time) * 1000000)::bigint, "  \
  "(extract(epoch FROM update_time) * 1000000)::bigint, "                                   \
  "(extract(epoch FROM last_seen_time) * 1000000)::bigint, domain, router_listen"
#define ALLOCATION_COLUMNS                                         \
  "id, owner_id, project_id, service, server_id, port, hostname, " \
  "(extract(epoch FROM create_time) * 1000000)::bigint"

constexpr db::Statement kUpsertPlatformServer{
    "infra_upsert_platform_server",
    "INSERT INTO infra.servers (id, owner_id, name, kind, port_range_start, port_range_end, "
    "status, status_reason) VALUES ($1, '', $2, $3, $4, $5, $6, $7) "
    "ON CONFLICT (owner_id, name) DO UPDATE SET kind = $3, port_range_start = $4, "
    "port_range_end = $5, status = $6, status_reason = $7, update_time = now(), "
    "last_seen_time = now() RETURNING " SERVER_COLUMNS};
constexpr db::Statement kGetServer{"infra_get_server",
                                   "SELECT " SERVER_COLUMNS " FROM infra.servers WHERE id = $1"};
// The caller's and the platform's servers ($2: everyone's), platform first,
// by name; $3/$4 the last row's (owner_id, name) or NULL.
constexpr db::Statement kListServers{
    "infra_list_servers", "SELECT " SERVER_COLUMNS
                          " FROM infra.servers WHERE ($2 OR owner_id = '' OR owner_id = $1) "
                          "AND ($3::text IS NULL OR (owner_id, name) > ($3::text, $4::text)) "
                          "ORDER BY owner_id, name LIMIT $5"};

constexpr db::Statement kInsertServer{
    "infra_insert_server",
    "INSERT INTO infra.servers (id, owner_id, name, kind, address, ssh_user, port_range_start, "
    "port_range_end, status, status_reason, sealed_private_key, request_id, domain, router_listen) "
    "VALUES ($1, $2, $3, $4::int, $5, $6, $7::int, $8::int, $9::int, $10, $11, NULLIF($12, ''), "
    "$13, $14) "
    "RETURNING " SERVER_COLUMNS};
constexpr db::Statement kServerByRequest{
    "infra_server_by_request",
    "SELECT " SERVER_COLUMNS " FROM infra.servers WHERE owner_id = $1 AND request_id = $2"};
constexpr db::Statement kGetServerLogin{
    "infra_get_server_login",
    "SELECT sealed_private_key, known_hosts FROM infra.servers WHERE id = $1"};
constexpr db::Statement kSaveKnownHosts{"infra_save_known_hosts",
                                        "UPDATE infra.servers SET known_hosts = $2 WHERE id = $1"};
// $3: the provision job's id, or NULL to keep it; $4: seen now; $6: the
// statuses it may change from, or NULL for any.
constexpr db::Statement kChangeServerStatus{
    "infra_change_server_status",
    "UPDATE infra.servers SET status = $2::int, status_reason = $5, "
    "provision_job_id = COALESCE($3, provision_job_id), update_time = now(), "
    "last_seen_time = CASE WHEN $4::bool THEN now() ELSE last_seen_time END "
    "WHERE id = $1 AND ($6::int[] IS NULL OR status = ANY($6::int[])) RETURNING " SERVER_COLUMNS};
constexpr db::Statement kSetProvisionJob{
    "infra_set_provision_job",
    "UPDATE infra.servers SET provision_job_id = $2, update_time = now() WHERE id = $1"};
constexpr db::Statement kServersIn{"infra_servers_in",
                                   "SELECT " SERVER_COLUMNS
                                   " FROM infra.servers WHERE kind = $1::int "
                                   "AND status = ANY($2::int[]) ORDER BY update_time, id LIMIT $3"};
constexpr db::Statement kGetMeshKey{
    "infra_get_mesh_key",
    "SELECT public_key, sealed_private_key FROM infra.mesh_keys WHERE name = $1"};
constexpr db::Statement kPutMeshKey{
    "infra_put_mesh_key",
    "INSERT INTO infra.mesh_keys (name, public_key, sealed_private_key) VALUES ($1, $2, $3) "
    "ON CONFLICT (name) DO NOTHING"};

constexpr db::Statement kGetAllocation{
    "infra_get_allocation", "SELECT " ALLOCATION_COLUMNS " FROM infra.allocations WHERE id = $1"};
constexpr db::Statement kFindByRequest{
    "infra_allocation_by_request",
    "SELECT " ALLOCATION_COLUMNS " FROM infra.allocations WHERE owner_id = $1 AND request_id = $2"};
constexpr db::Statement kFindByReleaseRequest{
    "infra_allocation_by_release_request",
    "SELECT " ALLOCATION_COLUMNS
    " FROM infra.allocations WHERE owner_id = $1 AND release_request_id = $2 "
    "ORDER BY release_time DESC LIMIT 1"};
constexpr db::Statement kFindHeld{
    "infra_allocation_held",
    "SELECT " ALLOCATION_COLUMNS
    " FROM infra.allocations WHERE project_id = $1 AND service = $2 AND release_time IS NULL"};
constexpr db::Statement kHeldPorts{
    "infra_held_ports",
    "SELECT port FROM infra.allocations WHERE server_id = $1 AND release_time IS NULL "
    "ORDER BY port"};
constexpr db::Statement kInsert{
    "infra_allocation_insert",
    "INSERT INTO infra.allocations (id, owner_id, project_id, service, server_id, port, "
    "hostname, request_id) VALUES ($1, $2, $3, $4, $5, $6::int, $7, NULLIF($8, '')) "
    "RETURNING " ALLOCATION_COLUMNS};
constexpr db::Statement kRelease{
    "infra_allocation_release",
    "UPDATE infra.allocations SET release_time = to_timestamp($3::bigint / 1000000.0), "
    "release_request_id = NULLIF($2, '') WHERE id = $1 AND release_time IS NULL"};
// Held allocations by id; $1 owner ('' = all), $2 project, $3 server ('' =
// any), $4 the last id or NULL.
constexpr db::Statement kListAllocations{
    "infra_list_allocations",
    "SELECT " ALLOCATION_COLUMNS
    " FROM infra.allocations WHERE release_time IS NULL AND ($1 = '' OR owner_id = $1) "
    "AND ($2 = '' OR project_id = $2) AND ($3 = '' OR server_id = $3) "
    "AND ($4::text IS NULL OR id > $4) ORDER BY id LIMIT $5"};

v1::Server ServerFromRow(const db::Result& r, int row) {
  v1::Server s;
  s.set_id(std::string(r.Get(row, 0)));
  s.set_owner_id(std::string(r.Get(row, 1)));
  s.set_name(std::string(r.Get(row, 2)));
  s.set_kind(static_cast<v1::ServerKind>(r.GetInt64(row, 3)));
  s.set_address(std::string(r.Get(row, 4)));
  s.set_ssh_user(std::string(r.Get(row, 5)));
  s.set_port_range_start(static_cast<int32_t>(r.GetInt64(row, 6)));
  s.set_port_range_end(static_cast<int32_t>(r.GetInt64(row, 7)));
  s.set_status(static_cast<v1::ServerStatus>(r.GetInt64(row, 8)));
  s.set_status_reason(std::string(r.Get(row, 9)));
  s.set_provision_job_id(std::string(r.Get(row, 10)));
  *s.mutable_create_time() = TimeUtil::MicrosecondsToTimestamp(r.GetInt64(row, 11));
  *s.mutable_update_time() = TimeUtil::MicrosecondsToTimestamp(r.GetInt64(row, 12));
  if (!r.IsNull(row, 13)) {
    *s.mutable_last_seen_time() = TimeUtil::MicrosecondsToTimestamp(r.GetInt64(row, 13));
  }
  s.set_domain(std::string(r.Get(row, 14)));
  s.set_router_listen(std::string(r.Get(row, 15)));
  return s;
}

v1::Allocation AllocationFromRow(const db::Result& r, int row) {
  v1::Allocation a;
  a.set_id(std::string(r.Get(row, 0)));
  a.set_owner_id(std::string(r.Get(row, 1)));
  a.set_project_id(std::string(r.Get(row, 2)));
  a.set_service(std::string(r.Get(row, 3)));
  a.set_server_id(std::string(r.Get(row, 4)));
  a.set_port(static_cast<int32_t>(r.GetInt64(row, 5)));
  a.set_hostname(std::string(r.Get(row, 6)));
  *a.mutable_create_time() = TimeUtil::MicrosecondsToTimestamp(r.GetInt64(row, 7));
  return a;
}

// A PostgreSQL int[] literal of the statuses.
std::string IntArray(const std::vector<v1::ServerStatus>& statuses) {
  std::string array = "{";
  for (size_t i = 0; i < statuses.size(); ++i) {
    absl::StrAppend(&array, i == 0 ? "" : ",", static_cast<int>(statuses[i]));
  }
  return array + "}";
}

absl::StatusOr<std::optional<v1::Allocation>> OneAllocation(absl::StatusOr<db::Result> r) {
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::nullopt;
  return AllocationFromRow(*r, 0);
}

}  // namespace

absl::StatusOr<v1::Server> PgInfraStore::UpsertPlatformServer(const v1::Server& server) {
  auto r = pool_->Exec(
      kUpsertPlatformServer,
      {NewId("srv_"), server.name(), std::to_string(server.kind()),
       std::to_string(server.port_range_start()), std::to_string(server.port_range_end()),
       std::to_string(server.status()), server.status_reason()});
  if (!r.ok()) return r.status();
  return ServerFromRow(*r, 0);
}

absl::StatusOr<v1::Server> PgInfraStore::GetServer(const std::string& server_id) {
  auto r = pool_->Exec(kGetServer, {server_id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0)
    return absl::NotFoundError(absl::StrCat("server '", server_id, "' not found"));
  return ServerFromRow(*r, 0);
}

absl::StatusOr<Page<v1::Server>> PgInfraStore::ListServers(const ServerFilter& filter,
                                                           const PageRequest& page) {
  const bool resume = page.after.size() == 2;
  auto r =
      pool_->Exec(kListServers, {filter.owner_id, filter.all_owners ? "true" : "false",
                                 resume ? std::optional<std::string>(page.after[0]) : std::nullopt,
                                 resume ? std::optional<std::string>(page.after[1]) : std::nullopt,
                                 std::to_string(page.page_size + 1)});
  if (!r.ok()) return r.status();
  Page<v1::Server> out;
  const int n = std::min(r->rows(), page.page_size);
  for (int i = 0; i < n; ++i) out.items.push_back(ServerFromRow(*r, i));
  if (r->rows() > page.page_size) {
    out.last_keys = {out.items.back().owner_id(), out.items.back().name()};
  }
  return out;
}

absl::StatusOr<v1::Server> PgInfraStore::InsertServer(const v1::Server& server,
                                                      const std::string& sealed_private_key,
                                                      const std::string& request_id) {
  auto r =
      pool_->Exec(kInsertServer,
                  {server.id(), server.owner_id(), server.name(), std::to_string(server.kind()),
                   server.address(), server.ssh_user(), std::to_string(server.port_range_start()),
                   std::to_string(server.port_range_end()), std::to_string(server.status()),
                   server.status_reason(), sealed_private_key, request_id, server.domain(),
                   server.router_listen()});
  if (!r.ok()) return r.status();
  return ServerFromRow(*r, 0);
}

absl::StatusOr<std::optional<v1::Server>> PgInfraStore::FindServerByRequest(
    const std::string& owner_id, const std::string& request_id) {
  auto r = pool_->Exec(kServerByRequest, {owner_id, request_id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::nullopt;
  return ServerFromRow(*r, 0);
}

absl::StatusOr<ServerLogin> PgInfraStore::GetServerLogin(const std::string& server_id) {
  auto r = pool_->Exec(kGetServerLogin, {server_id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) {
    return absl::NotFoundError(absl::StrCat("server '", server_id, "' not found"));
  }
  ServerLogin login;
  login.sealed_private_key = std::string(r->Get(0, 0));
  login.known_hosts = std::string(r->Get(0, 1));
  return login;
}

absl::Status PgInfraStore::SetProvisionJob(const std::string& server_id,
                                           const std::string& job_id) {
  return pool_->Exec(kSetProvisionJob, {server_id, job_id}).status();
}

absl::Status PgInfraStore::SaveKnownHosts(const std::string& server_id,
                                          const std::string& known_hosts) {
  return pool_->Exec(kSaveKnownHosts, {server_id, known_hosts}).status();
}

absl::StatusOr<v1::Server> PgInfraStore::ChangeServerStatus(const std::string& server_id,
                                                            const ServerStatusChange& change) {
  auto r = pool_->Exec(
      kChangeServerStatus,
      {server_id, std::to_string(change.status), change.provision_job_id,
       change.seen ? "true" : "false", change.reason,
       change.only_from.empty() ? std::nullopt
                                : std::optional<std::string>(IntArray(change.only_from))});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) {
    return absl::NotFoundError(absl::StrCat("server '", server_id, "' not found"));
  }
  return ServerFromRow(*r, 0);
}

absl::StatusOr<std::vector<v1::Server>> PgInfraStore::ServersIn(
    v1::ServerKind kind, const std::vector<v1::ServerStatus>& statuses, int limit) {
  auto r =
      pool_->Exec(kServersIn, {std::to_string(kind), IntArray(statuses), std::to_string(limit)});
  if (!r.ok()) return r.status();
  std::vector<v1::Server> servers;
  for (int i = 0; i < r->rows(); ++i) servers.push_back(ServerFromRow(*r, i));
  return servers;
}

absl::StatusOr<std::optional<MeshKeyPair>> PgInfraStore::GetMeshKey(const std::string& name) {
  auto r = pool_->Exec(kGetMeshKey, {name});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::nullopt;
  MeshKeyPair pair;
  pair.public_key = std::string(r->Get(0, 0));
  pair.sealed_private_key = std::string(r->Get(0, 1));
  return pair;
}

absl::StatusOr<MeshKeyPair> PgInfraStore::PutMeshKeyOnce(const std::string& name,
                                                         const MeshKeyPair& pair) {
  auto put = pool_->Exec(kPutMeshKey, {name, pair.public_key, pair.sealed_private_key});
  if (!put.ok()) return put.status();
  auto stored = GetMeshKey(name);
  if (!stored.ok()) return stored.status();
  if (!*stored) return absl::InternalError(absl::StrCat("mesh key '", name, "' vanished"));
  return **stored;
}

absl::StatusOr<v1::Allocation> PgInfraStore::GetAllocation(const std::string& allocation_id) {
  auto one = OneAllocation(pool_->Exec(kGetAllocation, {allocation_id}));
  if (!one.ok()) return one.status();
  if (!*one) return absl::NotFoundError(absl::StrCat("allocation '", allocation_id, "' not found"));
  return **one;
}

absl::StatusOr<std::optional<v1::Allocation>> PgInfraStore::FindByRequest(
    const std::string& owner_id, const std::string& request_id) {
  return OneAllocation(pool_->Exec(kFindByRequest, {owner_id, request_id}));
}

absl::StatusOr<std::optional<v1::Allocation>> PgInfraStore::FindByReleaseRequest(
    const std::string& owner_id, const std::string& request_id) {
  return OneAllocation(pool_->Exec(kFindByReleaseRequest, {owner_id, request_id}));
}

absl::StatusOr<std::optional<v1::Allocation>> PgInfraStore::FindHeld(const std::string& project_id,
                                                                     const std::string& service) {
  return OneAllocation(pool_->Exec(kFindHeld, {project_id, service}));
}

absl::StatusOr<std::vector<int>> PgInfraStore::HeldPorts(const std::string& server_id) {
  auto r = pool_->Exec(kHeldPorts, {server_id});
  if (!r.ok()) return r.status();
  std::vector<int> ports;
  for (int i = 0; i < r->rows(); ++i) ports.push_back(static_cast<int>(r->GetInt64(i, 0)));
  return ports;
}

absl::StatusOr<v1::Allocation> PgInfraStore::Insert(const v1::Allocation& a,
                                                    const std::string& request_id) {
  auto r = pool_->Exec(kInsert, {a.id(), a.owner_id(), a.project_id(), a.service(), a.server_id(),
                                 std::to_string(a.port()), a.hostname(), request_id});
  if (!r.ok()) return r.status();
  return AllocationFromRow(*r, 0);
}

absl::Status PgInfraStore::Release(const std::string& allocation_id, const std::string& request_id,
                                   absl::Time now) {
  auto r =
      pool_->Exec(kRelease, {allocation_id, request_id, std::to_string(absl::ToUnixMicros(now))});
  if (!r.ok()) return r.status();
  if (r->affected() == 0) {
    return absl::NotFoundError(absl::StrCat("allocation '", allocation_id, "' is not held"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Page<v1::Allocation>> PgInfraStore::ListAllocations(const AllocationFilter& filter,
                                                                   const PageRequest& page) {
  auto r = pool_->Exec(
      kListAllocations,
      {filter.owner_id, filter.project_id, filter.server_id,
       page.after.size() == 1 ? std::optional<std::string>(page.after[0]) : std::nullopt,
       std::to_string(page.page_size + 1)});
  if (!r.ok()) return r.status();
  Page<v1::Allocation> out;
  const int n = std::min(r->rows(), page.page_size);
  for (int i = 0; i < n; ++i) out.items.push_back(AllocationFromRow(*r, i));
  if (r->rows() > page.page_size) out.last_keys = {out.items.back().id()};
  return out;
}

}  // namespace orchestrator::infra
