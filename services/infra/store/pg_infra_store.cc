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
  "(extract(epoch FROM last_seen_time) * 1000000)::bigint"
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
