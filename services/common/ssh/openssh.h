#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/process/child_process.h"
#include "services/common/ssh/ssh_login.h"

namespace orchestrator::ssh {

// The files of a login directory: the private key and the known hosts.
inline constexpr char kKeyFile[] = "key";
inline constexpr char kKnownHostsFile[] = "known_hosts";

// The options every ssh of the mesh runs with: no user or system
// configuration, no agent, no password prompt, only the key in `login_dir`,
// a server's host key accepted on first contact (StrictHostKeyChecking=
// accept-new) into the directory's known_hosts and refused when it changes.
std::vector<std::string> OpenSshOptions(const std::string& login_dir,
                                        absl::Duration connect_timeout);

// A private directory (0700) holding a login's key (0600) and known hosts,
// removed with everything in it when it goes: the key never reaches an
// argument list, the environment or a log. Its name,
// "orchestrator-ssh-<pid>-XXXXXX", says which process it belongs to, so that
// SweepAbandonedLoginDirs removes what a killed process left.
class LoginDir {
 public:
  // Under `scratch_dir` ("" = the system's temporary directory); empty when
  // `login` is null.
  static absl::StatusOr<std::unique_ptr<LoginDir>> Make(const std::string& scratch_dir,
                                                        const SshLogin* login);
  ~LoginDir();
  LoginDir(const LoginDir&) = delete;
  LoginDir& operator=(const LoginDir&) = delete;

  const std::string& path() const { return path_; }
  // "<path>/<name>".
  std::string File(const std::string& name) const;
  // Writes `name` readable by this user only.
  absl::Status Write(const std::string& name, const std::string& content) const;
  // The content of `name` ("" when it cannot be read).
  std::string Read(const std::string& name) const;

 private:
  explicit LoginDir(std::string path) : path_(std::move(path)) {}
  const std::string path_;
};

// Removes the login directories under `scratch_dir` ("" = the system's
// temporary directory) whose process is gone (with a key in them when it
// was killed mid-call).
void SweepAbandonedLoginDirs(const std::string& scratch_dir);

// ssh's error, for people: the last lines of its standard error, or how it
// ended when it wrote none.
std::string SshErrorText(const ChildExit& exit);

}  // namespace orchestrator::ssh
