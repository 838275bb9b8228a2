#include "services/infra/domain/servers.h"

#include "absl/strings/str_cat.h"

namespace orchestrator::infra {

absl::StatusOr<v1::Server> ServerCatalog::EnsureLocal(int first, int last,
                                                      const std::string& flag) {
  if (first < 1024 || last > 65535 || first > last) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": a range FIRST-LAST within 1024-65535, FIRST <= LAST"));
  }
  v1::Server local;
  local.set_name(kLocalServerName);
  local.set_kind(v1::SERVER_KIND_LOCAL);
  local.set_port_range_start(first);
  local.set_port_range_end(last);
  local.set_status(v1::SERVER_STATUS_READY);
  local.set_status_reason("the machine the mesh runs on");
  return store_->UpsertPlatformServer(local);
}

absl::StatusOr<v1::Server> ServerCatalog::Get(const Principal& caller,
                                              const std::string& server_id) const {
  if (server_id.empty()) return absl::InvalidArgumentError("server_id: required");
  auto server = store_->GetServer(server_id);
  if (!server.ok()) return server.status();
  if (server->owner_id() != kPlatformOwner && !CanSeeOwner(caller, server->owner_id())) {
    return absl::NotFoundError(absl::StrCat("server '", server_id, "' not found"));
  }
  return server;
}

absl::StatusOr<v1::ListServersResponse> ServerCatalog::List(
    const Principal& caller, const v1::ListServersRequest& request) const {
  auto page = ParsePageRequest(request.page_size(), request.page_token(), "", 50, 500);
  if (!page.ok()) return page.status();
  ServerFilter filter;
  filter.owner_id = caller.user_id;
  filter.all_owners = caller.admin;
  auto rows = store_->ListServers(filter, *page);
  if (!rows.ok()) return rows.status();
  v1::ListServersResponse response;
  for (auto& s : rows->items) *response.add_servers() = std::move(s);
  if (!rows->last_keys.empty()) response.set_next_page_token(MakePageToken("", rows->last_keys));
  return response;
}

absl::StatusOr<v1::Server> ServerCatalog::Default(const Principal& caller) const {
  PageRequest page;
  page.page_size = 500;
  ServerFilter filter;
  filter.owner_id = caller.user_id;
  auto servers = store_->ListServers(filter, page);
  if (!servers.ok()) return servers.status();
  for (const auto& server : servers->items) {
    if (server.owner_id() == kPlatformOwner && server.name() == kLocalServerName &&
        server.status() == v1::SERVER_STATUS_READY) {
      return server;
    }
  }
  return absl::FailedPreconditionError(
      "no server takes deploys here: name a READY server in server_id (infra servers)");
}

}  // namespace orchestrator::infra
