#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "services/common/ssh/openssh.h"
#include "services/common/ssh/ssh_login.h"

namespace orchestrator::ssh {

struct SshTunnelOptions {
  // Where the tunnel's private directory is made ("" = the system's
  // temporary directory); short enough for unix socket paths.
  std::string scratch_dir;
  // For logging in and setting up every forward: Open gives up past it.
  absl::Duration connect_timeout = absl::Seconds(10);
  // Only the host keys the login brings (StrictHostKeyChecking=yes): for a
  // server whose keys were accepted before (when it was provisioned), so
  // that no unknown key, even of another type, is taken on the way.
  bool known_hosts_only = false;
};

// One supervised OpenSSH connection to a server that forwards local unix
// sockets to the server's unix sockets and to its loopback TCP ports (a
// remote container engine's and Caddy's admin sockets, the containers'
// ports on the server's 127.0.0.1).
//
// ssh runs as a ControlMaster (`-N`, ExitOnForwardFailure) with the options
// of OpenSshOptions, in a private directory (LoginDir) that holds its key
// only until it has logged in, its control socket and the local sockets
// (0600). A link that dies is noticed within ~15 s (ServerAliveInterval 5,
// ServerAliveCountMax 3); ssh then exits and the tunnel stays down: open a
// new one. ssh gets SIGKILL when this process dies (PR_SET_PDEATHSIG), and
// the directory a killed process left is removed by the next Open's sweep.
// Thread-safe.
class SshTunnel {
 public:
  // Logs in and forwards "<dir>/<name>" to the server's unix socket
  // `sockets[name]` (an absolute path) for each entry; returns once every
  // local socket accepts connections. UNAVAILABLE with ssh's own error when
  // ssh exits first (refused, authentication failed, host key changed) or
  // `connect_timeout` passes; INVALID_ARGUMENT for a name that is not a
  // plain file name or a path that is not absolute; FAILED_PRECONDITION
  // without ssh, or a `scratch_dir` too long for socket paths.
  // `login->known_hosts` gets a new server's host key (accept-new),
  // whatever the outcome.
  static absl::StatusOr<std::unique_ptr<SshTunnel>> Open(
      SshLogin* login, const std::map<std::string, std::string>& sockets,
      const SshTunnelOptions& options);

  // Ends ssh (its whole process group) and removes the directory.
  ~SshTunnel();
  SshTunnel(const SshTunnel&) = delete;
  SshTunnel& operator=(const SshTunnel&) = delete;

  // "<dir>/<name>": the local end of the forward of `name`.
  std::string SocketPath(const std::string& name) const;

  // A local unix socket that reaches 127.0.0.1:<port> on the server, made
  // on first use (`ssh -O forward` through the control socket) and kept.
  // UNAVAILABLE with ssh's error once the tunnel is down.
  absl::StatusOr<std::string> TcpPort(int port);

  // Whether ssh still runs (a dead link ends it within ~15 s).
  bool alive() const { return !exited_.HasBeenNotified(); }

 private:
  SshTunnel(std::unique_ptr<LoginDir> dir, const SshLogin& login, const SshTunnelOptions& options);

  // Runs ssh until it exits or cancel_ turns true; on the supervisor thread.
  void Supervise(std::vector<std::string> argv);
  // The ssh command line of a control request (`-O <request> ...`).
  std::vector<std::string> ControlCommand(const std::vector<std::string>& request) const;
  // UNAVAILABLE: the tunnel is down, with ssh's error.
  absl::Status Down() const;

  const std::unique_ptr<LoginDir> dir_;
  const std::string host_;
  const int port_;
  const std::string user_;
  const std::string who_;  // "user@host:port", for errors
  const SshTunnelOptions options_;

  std::atomic<bool> cancel_{false};
  // Notified when ssh has exited (exit_ is set by then).
  absl::Notification exited_;
  std::thread supervisor_;
  // Protects how ssh ended.
  mutable absl::Mutex mu_;
  ChildExit exit_ ABSL_GUARDED_BY(mu_);
  // Protects the TCP forwards; held while one is made, so a port is
  // forwarded once.
  absl::Mutex forwards_mu_;
  std::map<int, std::string> tcp_sockets_ ABSL_GUARDED_BY(forwards_mu_);
};

}  // namespace orchestrator::ssh
