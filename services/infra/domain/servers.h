#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "orchestrator/infra/v1/infra.pb.h"
#include "services/common/auth/principal.h"
#include "services/infra/domain/infra_store.h"

namespace orchestrator::infra {

// The name of the platform's server for the machine the mesh runs on.
inline constexpr char kLocalServerName[] = "local";

// Servers as callers see them: their own and the platform's; another
// owner's is NOT_FOUND (admins see every server).
class ServerCatalog {
 public:
  explicit ServerCatalog(InfraStorePtr store) : store_(std::move(store)) {}

  // Registers (or updates) the machine the mesh runs on as the platform's
  // READY server "local" with ports [first, last]; INVALID_ARGUMENT naming
  // `flag` for a bad range.
  absl::StatusOr<v1::Server> EnsureLocal(int first, int last, const std::string& flag);

  absl::StatusOr<v1::Server> Get(const Principal& caller, const std::string& server_id) const;
  absl::StatusOr<v1::ListServersResponse> List(const Principal& caller,
                                               const v1::ListServersRequest& request) const;
  // The READY server a deploy goes to when the caller names none: the
  // local one.
  absl::StatusOr<v1::Server> Default(const Principal& caller) const;

 private:
  InfraStorePtr store_;
};

}  // namespace orchestrator::infra
