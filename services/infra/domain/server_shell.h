#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/ssh/ssh_login.h"

namespace orchestrator::infra {

// How the mesh logs in to a server over SSH.
using SshLogin = ssh::SshLogin;

// What one host did in a playbook run.
struct PlaybookHostStats {
  int ok = 0;
  int changed = 0;
  int failed = 0;
  int unreachable = 0;
  int skipped = 0;
};

// How a playbook run went, from Ansible's own report.
struct PlaybookReport {
  int exit_code = 0;
  std::map<std::string, PlaybookHostStats> hosts;
  std::vector<std::string> tasks;  // the tasks started, in order
  // The first task that failed or found its host unreachable, and why.
  std::string failed_task;
  std::string failure;
  bool unreachable = false;
  bool cancelled = false;
};

// What a playbook run reports as it goes.
struct PlaybookEvents {
  std::function<void(const std::string& task)> task_started;
  std::function<bool()> cancelled;
};

// SSH and Ansible as the provisioning needs them (adapters/: OpenSSH's ssh
// and ansible-playbook). Both may add to `login->known_hosts`.
class ServerShell {
 public:
  virtual ~ServerShell() = default;
  // Logs in and runs `true`: OK, or UNAVAILABLE with ssh's error (refused,
  // timed out, authentication failed, host key changed).
  virtual absl::Status Reach(SshLogin* login, absl::Duration timeout) = 0;
  // Runs `playbook` (its text) against the server with `vars` as extra
  // variables; an error only when it could not run at all.
  virtual absl::StatusOr<PlaybookReport> RunPlaybook(SshLogin* login, const std::string& playbook,
                                                     const std::map<std::string, std::string>& vars,
                                                     absl::Duration timeout,
                                                     const PlaybookEvents& events) = 0;
};

using ServerShellPtr = std::shared_ptr<ServerShell>;

// A new SSH key pair (adapters/: ssh-keygen).
struct SshKeyPair {
  std::string private_key;  // OpenSSH private key file content
  std::string public_key;   // one authorized_keys line
};
class KeyPairMaker {
 public:
  virtual ~KeyPairMaker() = default;
  virtual absl::StatusOr<SshKeyPair> MakeEd25519(const std::string& comment) = 0;
};

using KeyPairMakerPtr = std::shared_ptr<KeyPairMaker>;

}  // namespace orchestrator::infra
