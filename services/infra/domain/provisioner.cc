#include "services/infra/domain/provisioner.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/infra/domain/servers.h"

namespace orchestrator::infra {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

// The mesh's key pair's name in the store, and what binds it there.
constexpr char kMeshKeyName[] = "mesh";
std::string MeshKeyAssociatedData() { return absl::StrCat("infra/mesh_keys/", kMeshKeyName); }

// Progress events (and log lines) one provision job sends at most: one
// per task started.
constexpr int kMaxProgressEvents = 64;
// How much of a failure a server's status_reason keeps.
constexpr size_t kMaxReasonBytes = 900;

std::string Cut(std::string text, size_t max) {
  if (text.size() <= max) return text;
  text.resize(max);
  return text + "…";
}

std::string Who(const SshLogin& login) {
  return absl::StrCat(login.user, "@", login.host, ":", login.port);
}

std::string Counts(const PlaybookReport& report) {
  std::vector<std::string> parts;
  for (const auto& [host, s] : report.hosts) {
    parts.push_back(absl::StrCat(host, ": ok=", s.ok, " changed=", s.changed, " failed=", s.failed,
                                 " unreachable=", s.unreachable, " skipped=", s.skipped));
  }
  return absl::StrJoin(parts, "; ");
}

Value Number(int n) {
  Value v;
  v.set_number_value(n);
  return v;
}

}  // namespace

std::string ProvisionConcurrencyKey(const std::string& server_id) {
  return absl::StrCat("provision:", server_id);
}

jobs::EnqueueRequest ProvisionJob(const std::string& owner_id, const std::string& server_id,
                                  const std::string& request_id) {
  jobs::EnqueueRequest job;
  job.kind = kProvisionJobKind;
  job.owner_id = owner_id;
  (*job.params.mutable_fields())["server_id"].set_string_value(server_id);
  job.request_id = request_id;
  // One retry, for a server that stopped answering for a moment; a task
  // that fails fails the job at once.
  job.max_attempts = 2;
  job.concurrency_key = ProvisionConcurrencyKey(server_id);
  return job;
}

absl::StatusOr<std::string> Provisioner::MeshPublicKey() {
  absl::MutexLock lock(&mesh_key_mu_);
  if (mesh_public_key_) return *mesh_public_key_;
  if (keys_ == nullptr) {
    return absl::FailedPreconditionError(
        "this mesh cannot keep its SSH key: start the infra component with --secrets_key_file");
  }
  auto stored = store_->GetMeshKey(kMeshKeyName);
  if (!stored.ok()) return stored.status();
  if (!*stored) {
    auto made = key_maker_->MakeEd25519("orchestrator-mesh");
    if (!made.ok()) return made.status();
    MeshKeyPair pair;
    pair.public_key = made->public_key;
    pair.sealed_private_key =
        absl::Base64Escape(keys_->Seal(made->private_key, MeshKeyAssociatedData()));
    auto kept = store_->PutMeshKeyOnce(kMeshKeyName, pair);
    if (!kept.ok()) return kept.status();
    *stored = *std::move(kept);
  }
  mesh_public_key_ = (*stored)->public_key;
  return *mesh_public_key_;
}

absl::StatusOr<v1::GetServerAccessResponse> Provisioner::DeployAccess(const v1::Server& server) {
  if (server.status() != v1::SERVER_STATUS_READY) {
    return absl::FailedPreconditionError(
        absl::StrCat("server ", server.name(), " is ", v1::ServerStatus_Name(server.status()), " (",
                     server.status_reason(),
                     "): deploys need it READY; provision it (infra provision ", server.id(), ")"));
  }
  v1::GetServerAccessResponse access;
  *access.mutable_server() = server;
  if (server.kind() == v1::SERVER_KIND_LOCAL) return access;
  if (server.kind() != v1::SERVER_KIND_SSH) {
    return absl::FailedPreconditionError(
        absl::StrCat("server ", server.name(), " is ", v1::ServerKind_Name(server.kind()),
                     ": deploys go to LOCAL and SSH servers only"));
  }
  if (keys_ == nullptr) {
    return absl::FailedPreconditionError(
        "this mesh cannot open its SSH key: start the infra component with --secrets_key_file");
  }
  if (server.domain().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "server ", server.name(),
        " has no domain to serve projects under (registered before servers had one): register "
        "it again with --domain"));
  }
  auto address = ParseSshAddress(server.address());
  if (!address.ok()) return absl::FailedPreconditionError(address.status().message());
  auto pair = store_->GetMeshKey(kMeshKeyName);
  if (!pair.ok()) return pair.status();
  if (!*pair) {
    return absl::FailedPreconditionError(
        absl::StrCat("server ", server.name(),
                     " was not provisioned by this mesh (it has no SSH key): "
                     "provision it (infra provision ",
                     server.id(), ")"));
  }
  std::string sealed;
  if (!absl::Base64Unescape((*pair)->sealed_private_key, &sealed)) {
    return absl::DataLossError("the mesh's stored SSH key is damaged");
  }
  auto key = keys_->Open(sealed, MeshKeyAssociatedData());
  if (!key.ok()) {
    return absl::DataLossError(
        "the mesh's SSH key cannot be opened with this mesh's --secrets_key_file");
  }
  auto stored = store_->GetServerLogin(server.id());
  if (!stored.ok()) return stored.status();
  if (stored->known_hosts.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("server ", server.name(),
                     ": no host key of it is known, so the mesh cannot tell it is "
                     "the server it provisioned: provision it again (infra provision ",
                     server.id(), ")"));
  }
  v1::SshAccess& ssh = *access.mutable_ssh();
  ssh.set_host(address->host);
  ssh.set_port(address->port);
  ssh.set_user(kDeployUser);
  ssh.set_private_key(*std::move(key));
  ssh.set_known_hosts(std::move(stored->known_hosts));
  ssh.set_engine_socket(kServerEngineSocket);
  ssh.set_caddy_admin_socket(kServerCaddyAdminSocket);
  return access;
}

absl::StatusOr<SshLogin> Provisioner::LoginOf(const v1::Server& server) {
  if (server.kind() != v1::SERVER_KIND_SSH) {
    return absl::FailedPreconditionError(
        absl::StrCat("server ", server.name(), " is not an SSH server: nothing to provision"));
  }
  if (keys_ == nullptr) {
    return absl::FailedPreconditionError(
        "this mesh cannot open private keys: start the infra component with --secrets_key_file");
  }
  auto address = ParseSshAddress(server.address());
  if (!address.ok()) return absl::FailedPreconditionError(address.status().message());
  auto stored = store_->GetServerLogin(server.id());
  if (!stored.ok()) return stored.status();
  std::string sealed;
  if (!absl::Base64Unescape(stored->sealed_private_key, &sealed)) {
    return absl::DataLossError(
        absl::StrCat("server ", server.name(), ": its stored key is damaged"));
  }
  auto key = keys_->Open(sealed, ServerKeyAssociatedData(server.id()));
  if (!key.ok()) {
    return absl::DataLossError(absl::StrCat(
        "server ", server.name(),
        ": its private key cannot be opened with this mesh's --secrets_key_file; register it "
        "again"));
  }
  SshLogin login;
  login.host = address->host;
  login.port = address->port;
  login.user = server.ssh_user();
  login.private_key = *std::move(key);
  login.known_hosts = std::move(stored->known_hosts);
  return login;
}

void Provisioner::KeepKnownHosts(const v1::Server& server, const std::string& before,
                                 const SshLogin& login) {
  if (login.known_hosts == before) return;
  (void)store_->SaveKnownHosts(server.id(), login.known_hosts);
}

absl::StatusOr<v1::Server> Provisioner::Mark(const v1::Server& server, v1::ServerStatus status,
                                             const std::string& reason, const std::string& job_id,
                                             bool seen) {
  ServerStatusChange change;
  change.status = status;
  change.reason = Cut(reason, kMaxReasonBytes);
  if (!job_id.empty()) change.provision_job_id = job_id;
  change.seen = seen;
  return store_->ChangeServerStatus(server.id(), change);
}

absl::Status Provisioner::CheckReachable(const v1::Server& server) {
  auto login = LoginOf(server);
  if (!login.ok()) return login.status();
  const std::string before = login->known_hosts;
  absl::Status reached = shell_->Reach(&*login, options_.reach_timeout);
  KeepKnownHosts(server, before, *login);
  return reached;
}

absl::StatusOr<Struct> Provisioner::Provision(const jobs::v1::Job& job,
                                              const jobs::JobHooks& hooks) {
  const auto& params = job.params().fields();
  const auto id = params.find("server_id");
  if (id == params.end() || id->second.string_value().empty()) {
    return absl::InvalidArgumentError("server_id: the job names no server");
  }
  auto server = store_->GetServer(id->second.string_value());
  if (!server.ok()) return server.status();
  auto public_key = MeshPublicKey();
  if (!public_key.ok()) {
    (void)Mark(*server, v1::SERVER_STATUS_FAILED, std::string(public_key.status().message()),
               job.id());
    return public_key.status();
  }
  auto login = LoginOf(*server);
  if (!login.ok()) {
    (void)Mark(*server, v1::SERVER_STATUS_FAILED, std::string(login.status().message()), job.id());
    return login.status();
  }
  if (auto s = Mark(*server, v1::SERVER_STATUS_PROVISIONING,
                    absl::StrCat("provision job ", job.id(), " is running"), job.id());
      !s.ok()) {
    return s.status();
  }
  const std::string before = login->known_hosts;
  hooks.progress(5, absl::StrCat("reaching ", Who(*login)));
  if (absl::Status reached = shell_->Reach(&*login, options_.reach_timeout); !reached.ok()) {
    KeepKnownHosts(*server, before, *login);
    (void)Mark(*server, v1::SERVER_STATUS_FAILED,
               absl::StrCat("provisioning could not reach it: ", reached.message()), job.id());
    return reached;
  }

  int started = 0;
  PlaybookEvents events;
  events.task_started = [&](const std::string& task) {
    if (++started > kMaxProgressEvents) return;
    hooks.log(absl::StrCat("task: ", task));
    hooks.progress(std::min(95, 10 + 10 * started), absl::StrCat("task: ", task));
  };
  events.cancelled = hooks.cancelled;
  std::map<std::string, std::string> vars{{"deploy_user", kDeployUser},
                                          {"mesh_public_key", *public_key},
                                          {"deploy_dir", kServerDeployDir},
                                          {"engine_socket", kServerEngineSocket},
                                          {"caddy_admin_socket", kServerCaddyAdminSocket}};
  auto report =
      shell_->RunPlaybook(&*login, options_.playbook, vars, options_.playbook_timeout, events);
  KeepKnownHosts(*server, before, *login);
  if (!report.ok()) {
    (void)Mark(*server, v1::SERVER_STATUS_FAILED,
               absl::StrCat("the playbook could not run: ", report.status().message()), job.id());
    return report.status();
  }
  if (report->cancelled) {
    (void)Mark(*server, v1::SERVER_STATUS_FAILED,
               absl::StrCat("provision job ", job.id(), " was stopped before it finished"),
               job.id());
    return absl::CancelledError("provisioning was stopped");
  }
  if (!report->failed_task.empty() || report->exit_code != 0) {
    const std::string task = report->failed_task.empty() ? "?" : report->failed_task;
    const std::string what =
        report->unreachable
            ? absl::StrCat("task '", task, "': the server became unreachable: ", report->failure)
            : absl::StrCat("task '", task, "' failed: ",
                           report->failure.empty()
                               ? absl::StrCat("ansible-playbook exited with ", report->exit_code)
                               : report->failure);
    (void)Mark(*server, v1::SERVER_STATUS_FAILED, what, job.id());
    const std::string message = absl::StrCat(what, " (", Counts(*report), ")");
    return report->unreachable ? absl::UnavailableError(message)
                               : absl::FailedPreconditionError(message);
  }

  Struct result;
  auto& fields = *result.mutable_fields();
  fields["server_id"].set_string_value(server->id());
  PlaybookHostStats total;
  auto& hosts = *fields["hosts"].mutable_struct_value()->mutable_fields();
  for (const auto& [host, s] : report->hosts) {
    auto& h = *hosts[host].mutable_struct_value()->mutable_fields();
    h["ok"] = Number(s.ok);
    h["changed"] = Number(s.changed);
    h["failed"] = Number(s.failed);
    h["unreachable"] = Number(s.unreachable);
    h["skipped"] = Number(s.skipped);
    total.ok += s.ok;
    total.changed += s.changed;
  }
  fields["ok"] = Number(total.ok);
  fields["changed"] = Number(total.changed);
  fields["failed"] = Number(0);
  fields["deploy_user"].set_string_value(kDeployUser);
  auto& tasks = *fields["tasks"].mutable_list_value();
  for (const auto& task : report->tasks) tasks.add_values()->set_string_value(task);
  (void)Mark(*server, v1::SERVER_STATUS_READY,
             absl::StrCat("provisioned by job ", job.id(), " (", total.changed, " changed, ",
                          total.ok, " ok)"),
             job.id(), /*seen=*/true);
  hooks.progress(100, absl::StrCat("provisioned: ", total.changed, " changed, ", total.ok, " ok"));
  return result;
}

absl::StatusOr<Struct> Provisioner::ProbeServers(const jobs::JobHooks& hooks) {
  const std::vector<v1::ServerStatus> watched = {v1::SERVER_STATUS_READY,
                                                 v1::SERVER_STATUS_UNREACHABLE};
  auto servers = store_->ServersIn(v1::SERVER_KIND_SSH, watched, options_.max_probed);
  if (!servers.ok()) return servers.status();
  int reachable = 0, unreachable = 0, skipped = 0;
  for (const auto& server : *servers) {
    if (hooks.cancelled()) return absl::CancelledError("the probe was stopped");
    ServerStatusChange change;
    change.only_from = watched;
    absl::Status reached = CheckReachable(server);
    if (reached.ok()) {
      ++reachable;
      change.status = v1::SERVER_STATUS_READY;
      change.reason = server.status() == v1::SERVER_STATUS_READY && !server.status_reason().empty()
                          ? server.status_reason()
                          : "reachable again";
      change.seen = true;
    } else if (reached.code() == absl::StatusCode::kUnavailable) {
      ++unreachable;
      change.status = v1::SERVER_STATUS_UNREACHABLE;
      change.reason = Cut(std::string(reached.message()), kMaxReasonBytes);
      hooks.log(absl::StrCat("server ", server.id(), " (", server.name(), "): ", change.reason));
    } else {
      ++skipped;  // its key cannot be opened, ...: nothing a probe can tell
      hooks.log(absl::StrCat("server ", server.id(), " not probed: ", reached.message()));
      continue;
    }
    // NOT_FOUND: a provision job took it meanwhile; it tells.
    (void)store_->ChangeServerStatus(server.id(), change);
  }
  // A provision whose job ended without telling (killed on its last
  // attempt): the server would read PROVISIONING for ever.
  int abandoned = 0;
  if (options_.job_ended) {
    auto provisioning = store_->ServersIn(v1::SERVER_KIND_SSH, {v1::SERVER_STATUS_PROVISIONING},
                                          options_.max_probed);
    if (!provisioning.ok()) return provisioning.status();
    for (const auto& server : *provisioning) {
      if (server.provision_job_id().empty()) continue;
      auto ended = options_.job_ended(server.provision_job_id());
      if (!ended.ok() || !*ended) continue;
      ServerStatusChange change;
      change.only_from = {v1::SERVER_STATUS_PROVISIONING};
      change.status = v1::SERVER_STATUS_FAILED;
      change.reason = absl::StrCat("provision job ", server.provision_job_id(),
                                   " ended without reporting (its worker was lost); provision "
                                   "the server again");
      if (store_->ChangeServerStatus(server.id(), change).ok()) ++abandoned;
    }
  }
  Struct result;
  auto& fields = *result.mutable_fields();
  fields["abandoned_provisions_failed"] = Number(abandoned);
  fields["probed"] = Number(static_cast<int>(servers->size()));
  fields["reachable"] = Number(reachable);
  fields["unreachable"] = Number(unreachable);
  fields["skipped"] = Number(skipped);
  return result;
}

}  // namespace orchestrator::infra
