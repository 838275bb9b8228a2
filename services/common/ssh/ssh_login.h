#pragma once

#include <string>

namespace orchestrator::ssh {

// How the mesh logs in to a server over SSH.
struct SshLogin {
  std::string host;  // a host name or an address (IPv6 without brackets)
  int port = 22;
  std::string user;
  std::string private_key;  // OpenSSH private key file content
  // Host keys accepted so far (ssh's known_hosts lines): a new server's are
  // accepted on first contact and kept; a changed one is refused.
  std::string known_hosts;
};

}  // namespace orchestrator::ssh
