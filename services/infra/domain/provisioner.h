#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "orchestrator/infra/v1/infra.pb.h"
#include "services/common/crypto/secret_box.h"
#include "services/infra/domain/infra_store.h"
#include "services/infra/domain/server_shell.h"
#include "services/jobs/domain/job_hooks.h"
#include "services/jobs/domain/job_types.h"

namespace orchestrator::infra {

// The job that provisions a server (params: server_id), and the one that
// probes every provisioned SSH server (the scheduler enqueues it).
inline constexpr char kProvisionJobKind[] = "provision";
inline constexpr char kProbeServersJobKind[] = "infra.servers.probe";
// The user provisioning makes on every server for deploys.
inline constexpr char kDeployUser[] = "deploy";

// Where provisioning puts what deploys use on a server, in a directory of
// the deploy user's that Caddy shares: the container engine's Docker Engine
// API socket (Podman run by the deploy user) and Caddy's admin API socket.
inline constexpr char kServerDeployDir[] = "/srv/orchestrator";
inline constexpr char kServerEngineSocket[] = "/srv/orchestrator/engine.sock";
inline constexpr char kServerCaddyAdminSocket[] = "/srv/orchestrator/caddy-admin.sock";

// At most one provision job of a server runs at a time.
std::string ProvisionConcurrencyKey(const std::string& server_id);

// The provision job of `server_id` for `owner_id`.
jobs::EnqueueRequest ProvisionJob(const std::string& owner_id, const std::string& server_id,
                                  const std::string& request_id);

struct ProvisionerOptions {
  // The playbook's text (services/infra/provisioning/provision.yml).
  std::string playbook;
  absl::Duration reach_timeout = absl::Seconds(5);
  absl::Duration playbook_timeout = absl::Minutes(30);
  // Servers one probe job reaches at most (those updated longest ago).
  int max_probed = 500;
  // Whether a job has ended (the job engine's queue); null: not asked. A
  // server PROVISIONING under a job that ended without saying so (its
  // worker killed on its last attempt) is FAILED by the next probe.
  std::function<absl::StatusOr<bool>(const std::string& job_id)> job_ended = nullptr;
};

// Provisions SSH servers with the platform's playbook and watches that
// they stay reachable; records what it finds on the server's row (the
// listener the old system's provisioner never had).
class Provisioner {
 public:
  Provisioner(InfraStorePtr store, std::shared_ptr<const SecretBox> keys, ServerShellPtr shell,
              KeyPairMakerPtr key_maker, ProvisionerOptions options)
      : store_(std::move(store)),
        keys_(std::move(keys)),
        shell_(std::move(shell)),
        key_maker_(std::move(key_maker)),
        options_(std::move(options)) {}

  // OK when `server` can be reached over SSH now; UNAVAILABLE with ssh's
  // error otherwise (before a provision job is queued).
  absl::Status CheckReachable(const v1::Server& server);

  // Records `job_id` as the server's latest provision job.
  absl::Status NoteQueued(const std::string& server_id, const std::string& job_id) {
    return store_->SetProvisionJob(server_id, job_id);
  }

  // The provision job's handler: PROVISIONING while the playbook runs,
  // then READY, or FAILED naming the failing task (the job FAILED too,
  // UNAVAILABLE when the server could not be reached). The result counts
  // what the playbook did per host.
  absl::StatusOr<google::protobuf::Struct> Provision(const jobs::v1::Job& job,
                                                     const jobs::JobHooks& hooks);

  // The probe job's handler: every READY or UNREACHABLE SSH server is
  // reached (READY, seen now) or not (UNREACHABLE with ssh's error).
  absl::StatusOr<google::protobuf::Struct> ProbeServers(const jobs::JobHooks& hooks);

  // The mesh's SSH public key (made once, then kept sealed in the store).
  absl::StatusOr<std::string> MeshPublicKey();

  // How deploys reach `server` (READY): for SSH, the deploy user's login
  // with the mesh's private key and the server's accepted host keys.
  absl::StatusOr<v1::GetServerAccessResponse> DeployAccess(const v1::Server& server);

 private:
  absl::StatusOr<SshLogin> LoginOf(const v1::Server& server);
  // Keeps the host keys ssh accepted (best effort: the next contact
  // accepts them again).
  void KeepKnownHosts(const v1::Server& server, const std::string& before, const SshLogin& login);
  absl::StatusOr<v1::Server> Mark(const v1::Server& server, v1::ServerStatus status,
                                  const std::string& reason, const std::string& job_id = "",
                                  bool seen = false);

  InfraStorePtr store_;
  std::shared_ptr<const SecretBox> keys_;
  ServerShellPtr shell_;
  KeyPairMakerPtr key_maker_;
  const ProvisionerOptions options_;

  absl::Mutex mesh_key_mu_;
  // The mesh's public key once read or made.
  std::optional<std::string> mesh_public_key_ ABSL_GUARDED_BY(mesh_key_mu_);
};

}  // namespace orchestrator::infra
