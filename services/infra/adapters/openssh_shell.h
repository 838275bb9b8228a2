#pragma once

#include <string>

#include "services/infra/domain/server_shell.h"

namespace orchestrator::infra {

// ServerShell with OpenSSH's ssh and Debian's ansible-playbook, and
// KeyPairMaker with ssh-keygen. Every call works in a private directory of
// its own (0700) that holds the private key (0600) and the known hosts,
// removed when it ends: the key never reaches an argument list, the
// environment or a log. Host keys: accepted on first contact
// (StrictHostKeyChecking=accept-new) into the server's own known_hosts,
// refused when they change. Nothing of the operator's ~/.ssh or Ansible
// configuration is read.
class OpenSshShell final : public ServerShell, public KeyPairMaker {
 public:
  // `scratch_dir`: where the private directories are made ("" = the
  // system's temporary directory). Directories a process that died left
  // there (with a decrypted key in them) are removed first.
  explicit OpenSshShell(std::string scratch_dir = "");

  absl::Status Reach(SshLogin* login, absl::Duration timeout) override;
  absl::StatusOr<PlaybookReport> RunPlaybook(SshLogin* login, const std::string& playbook,
                                             const std::map<std::string, std::string>& vars,
                                             absl::Duration timeout,
                                             const PlaybookEvents& events) override;
  absl::StatusOr<SshKeyPair> MakeEd25519(const std::string& comment) override;

 private:
  std::string scratch_dir_;
};

}  // namespace orchestrator::infra
