#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "orchestrator/infra/v1/infra.pb.h"
#include "services/common/auth/principal.h"
#include "services/common/crypto/secret_box.h"
#include "services/infra/domain/infra_store.h"

namespace orchestrator::infra {

// The name of the platform's server for the machine the mesh runs on.
inline constexpr char kLocalServerName[] = "local";

// A server's address split for ssh: "host", "host:port", "[v6]" or
// "[v6]:port" (port 22 when absent); INVALID_ARGUMENT naming
// server.address for anything else (a host must not start with '-', nor
// hold what a shell or Ansible would interpret).
struct SshAddress {
  std::string host;
  int port = 22;
};
absl::StatusOr<SshAddress> ParseSshAddress(const std::string& address);

// What binds a server's sealed private key to its row.
std::string ServerKeyAssociatedData(const std::string& server_id);

// Servers as callers see them: their own and the platform's; another
// owner's is NOT_FOUND (admins see every server).
class ServerCatalog {
 public:
  // `keys` seals the private keys of servers users register; without it
  // RegisterServer is FAILED_PRECONDITION.
  explicit ServerCatalog(InfraStorePtr store, std::shared_ptr<const SecretBox> keys = nullptr)
      : store_(std::move(store)), keys_(std::move(keys)) {}

  // Registers the caller's SSH server, REGISTERED, its private key sealed;
  // a retry with the same request_id answers the same server.
  absl::StatusOr<v1::Server> Register(const Principal& caller,
                                      const v1::RegisterServerRequest& request);

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
  std::shared_ptr<const SecretBox> keys_;
};

}  // namespace orchestrator::infra
