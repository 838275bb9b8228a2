#include "services/infra/domain/port_allocator.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "re2/re2.h"
#include "services/common/crypto/secret_box.h"

namespace orchestrator::infra {
namespace {

// A service name is one DNS label: it becomes part of a host name.
constexpr char kDefaultService[] = "web";
bool IsServiceName(const std::string& service) {
  static const RE2* const kPattern = new RE2("[a-z]([a-z0-9-]{0,61}[a-z0-9])?");
  return RE2::FullMatch(service, *kPattern);
}

// Port allocations one owner may hold at once (on all servers).
constexpr int kMaxAllocationsPerOwner = 64;

// Ports tried after the preferred one before giving up on a crowded range
// (others may be taking ports at the same moment).
constexpr int kInsertAttempts = 8;

}  // namespace

std::string RouteHostname(const std::string& project_id, const std::string& service,
                          const std::string& domain) {
  std::string project = absl::AsciiStrToLower(absl::StrReplaceAll(project_id, {{"_", "-"}}));
  if (service == kDefaultService) return absl::StrCat(project, ".", domain);
  return absl::StrCat(service, ".", project, ".", domain);
}

absl::StatusOr<v1::Allocation> PortAllocator::Allocate(const Principal& caller,
                                                       const v1::AllocatePortRequest& request) {
  if (request.project_id().empty()) return absl::InvalidArgumentError("project_id: required");
  const std::string service = request.service().empty() ? kDefaultService : request.service();
  if (!IsServiceName(service)) {
    return absl::InvalidArgumentError(
        "service: 1 to 63 of a-z, 0-9 and '-', starting with a letter (it names a host)");
  }
  if (!request.request_id().empty()) {
    auto earlier = store_->FindByRequest(caller.user_id, request.request_id());
    if (!earlier.ok()) return earlier.status();
    if (*earlier) {
      if ((*earlier)->project_id() != request.project_id() || (*earlier)->service() != service) {
        return absl::FailedPreconditionError(absl::StrCat("request_id '", request.request_id(),
                                                          "' was used for another allocation (",
                                                          (*earlier)->id(), ")"));
      }
      return **earlier;
    }
  }
  auto held = store_->FindHeld(request.project_id(), service);
  if (!held.ok()) return held.status();
  if (*held) {
    if (!request.server_id().empty() && (*held)->server_id() != request.server_id()) {
      return absl::FailedPreconditionError(
          absl::StrCat("service ", service, " of project ", request.project_id(), " holds port ",
                       (*held)->port(), " on server ", (*held)->server_id(),
                       "; release that allocation (", (*held)->id(), ") to move it"));
    }
    return **held;
  }

  // A shared server's ports are everyone's: one owner holds a bounded share.
  AllocationFilter mine{caller.user_id, "", ""};
  PageRequest count;
  count.page_size = kMaxAllocationsPerOwner;
  auto held_by_owner = store_->ListAllocations(mine, count);
  if (!held_by_owner.ok()) return held_by_owner.status();
  if (!held_by_owner->last_keys.empty() ||
      static_cast<int>(held_by_owner->items.size()) >= kMaxAllocationsPerOwner) {
    return absl::ResourceExhaustedError(
        absl::StrCat("you hold ", kMaxAllocationsPerOwner,
                     " port allocations, the most one user may: release one you no longer need"));
  }
  auto server = request.server_id().empty() ? servers_->Default(caller)
                                            : servers_->Get(caller, request.server_id());
  if (!server.ok()) return server.status();
  if (server->kind() == v1::SERVER_KIND_SSH && server->domain().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("server ", server->name(),
                     " has no domain to serve projects under: register it again with --domain"));
  }
  if (server->status() != v1::SERVER_STATUS_READY) {
    return absl::FailedPreconditionError(
        absl::StrCat("server ", server->name(), " is ", v1::ServerStatus_Name(server->status()),
                     ": provision it first (infra provision ", server->id(), ")"));
  }
  const int first = server->port_range_start(), last = server->port_range_end();
  if (request.preferred_port() != 0 &&
      (request.preferred_port() < first || request.preferred_port() > last)) {
    return absl::InvalidArgumentError(
        absl::StrCat("preferred_port: server ", server->name(), " allocates ", first, "-", last));
  }

  v1::Allocation allocation;
  allocation.set_owner_id(caller.user_id);
  allocation.set_project_id(request.project_id());
  allocation.set_service(service);
  allocation.set_server_id(server->id());
  // An SSH server serves under its own domain; the local one under the
  // mesh's.
  allocation.set_hostname(RouteHostname(
      request.project_id(), service, server->domain().empty() ? route_domain_ : server->domain()));
  for (int attempt = 0; attempt < kInsertAttempts; ++attempt) {
    auto ports = store_->HeldPorts(server->id());
    if (!ports.ok()) return ports.status();
    const std::set<int> taken(ports->begin(), ports->end());
    auto usable = [&](int port) { return !taken.count(port) && probe_(*server, port); };
    int port = 0;
    if (request.preferred_port() != 0 && usable(request.preferred_port())) {
      port = request.preferred_port();
    } else {
      for (int p = first; p <= last && port == 0; ++p) {
        if (usable(p)) port = p;
      }
    }
    if (port == 0) {
      return absl::ResourceExhaustedError(
          absl::StrCat("server ", server->name(), " has no free port in ", first, "-", last));
    }
    allocation.set_id(NewId("alc_"));
    allocation.set_port(port);
    auto made = store_->Insert(allocation, request.request_id());
    if (made.ok() || made.status().code() != absl::StatusCode::kAlreadyExists) return made;
    // Taken meanwhile: the port, the service or the request. The last two
    // answer as above; the first tries again.
    if (!request.request_id().empty()) {
      auto earlier = store_->FindByRequest(caller.user_id, request.request_id());
      if (earlier.ok() && *earlier) return **earlier;
    }
    auto now_held = store_->FindHeld(request.project_id(), service);
    if (now_held.ok() && *now_held) return **now_held;
  }
  return absl::AbortedError(
      absl::StrCat("server ", server->name(), ": ports kept being taken; try again"));
}

absl::StatusOr<v1::Allocation> PortAllocator::Release(const Principal& caller,
                                                      const v1::ReleaseAllocationRequest& request,
                                                      absl::Time now) {
  if (request.allocation_id().empty()) {
    return absl::InvalidArgumentError("allocation_id: required");
  }
  if (!request.request_id().empty()) {
    auto earlier = store_->FindByReleaseRequest(caller.user_id, request.request_id());
    if (!earlier.ok()) return earlier.status();
    if (*earlier && (*earlier)->id() == request.allocation_id()) return **earlier;
  }
  auto allocation = store_->GetAllocation(request.allocation_id());
  const std::string not_found =
      absl::StrCat("allocation '", request.allocation_id(), "' not found");
  if (allocation.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(not_found);
  }
  if (!allocation.ok()) return allocation.status();
  if (!CanSeeOwner(caller, allocation->owner_id()) ||
      !CanReachProject(caller, allocation->project_id())) {
    return absl::NotFoundError(not_found);
  }
  if (allocation->owner_id() != caller.user_id) {
    return absl::PermissionDeniedError(absl::StrCat(
        "allocation ", allocation->id(), " belongs to another user: only its owner releases it"));
  }
  if (!request.confirm()) {
    return absl::FailedPreconditionError(
        absl::StrCat("confirm: releasing allocation ", allocation->id(), " frees port ",
                     allocation->port(), " of server ", allocation->server_id(), " and ",
                     allocation->hostname(), " stops reaching project ", allocation->project_id(),
                     "'s ", allocation->service(), " service; set confirm to true to release it"));
  }
  if (releases_ != nullptr && !request.force()) {
    auto live = releases_->Live(allocation->owner_id(), allocation->project_id());
    if (!live.ok() && live.status().code() != absl::StatusCode::kNotFound) {
      return absl::UnavailableError(
          absl::StrCat("cannot tell whether allocation ", allocation->id(),
                       " serves the project's live release (", live.status().message(),
                       "): try again, or set force to release it whatever it serves"));
    }
    if (live.ok() && *live && (*live)->port() == allocation->port() &&
        ((*live)->server_id().empty() || (*live)->server_id() == allocation->server_id())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "force: port ", allocation->port(), " of allocation ", allocation->id(),
          " serves project ", allocation->project_id(), "'s LIVE release ", (*live)->version(),
          (*live)->url().empty() ? "" : absl::StrCat(" (", (*live)->url(), ")"),
          "; releasing it takes the service offline: set force (with confirm) to release it "
          "anyway"));
    }
  }
  if (auto s = store_->Release(allocation->id(), request.request_id(), now); !s.ok()) {
    return s.code() == absl::StatusCode::kNotFound ? absl::NotFoundError(not_found) : s;
  }
  return allocation;
}

absl::StatusOr<v1::ListAllocationsResponse> PortAllocator::List(
    const Principal& caller, const v1::ListAllocationsRequest& request) const {
  auto owner = OwnerFilter(caller, request.owner_id());
  if (!owner.ok()) return owner.status();
  AllocationFilter filter{*owner, request.project_id(), request.server_id()};
  v1::ListAllocationsResponse response;
  if (!caller.project_id.empty()) {
    if (!filter.project_id.empty() && filter.project_id != caller.project_id) return response;
    filter.project_id = caller.project_id;
  }
  const std::string fingerprint =
      absl::StrCat(filter.owner_id, "|", filter.project_id, "|", filter.server_id);
  auto page = ParsePageRequest(request.page_size(), request.page_token(), fingerprint, 50, 500);
  if (!page.ok()) return page.status();
  auto rows = store_->ListAllocations(filter, *page);
  if (!rows.ok()) return rows.status();
  for (auto& a : rows->items) *response.add_allocations() = std::move(a);
  if (!rows->last_keys.empty()) {
    response.set_next_page_token(MakePageToken(fingerprint, rows->last_keys));
  }
  return response;
}

absl::StatusOr<int> PortAllocator::FreeOrphans(ProjectRegistry& projects, absl::Time now) {
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> by_project;
  PageRequest page;
  page.page_size = 500;
  while (true) {
    auto held = store_->ListAllocations(AllocationFilter{}, page);
    if (!held.ok()) return held.status();
    for (const auto& a : held->items) by_project[{a.owner_id(), a.project_id()}].push_back(a.id());
    if (held->last_keys.empty()) break;
    page.after = held->last_keys;
  }
  int freed = 0;
  for (const auto& [project, allocation_ids] : by_project) {
    auto exists = projects.Exists(project.first, project.second);
    if (!exists.ok() || *exists) continue;
    for (const std::string& id : allocation_ids) {
      if (store_->Release(id, absl::StrCat("orphan-sweep:", id), now).ok()) ++freed;
    }
  }
  return freed;
}

}  // namespace orchestrator::infra
