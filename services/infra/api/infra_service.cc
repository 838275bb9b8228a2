#include "services/infra/api/infra_service.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/common/peers/serve_for_project.h"
#include "services/common/rpc/queued_writer.h"
#include "services/common/rpc/serve_unary.h"
#include "services/jobs/domain/job_types.h"

namespace orchestrator::infra {

grpc::ServerUnaryReactor* InfraServiceImpl::RegisterServer(grpc::CallbackServerContext* ctx,
                                                           const v1::RegisterServerRequest* req,
                                                           v1::RegisterServerResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) -> absl::Status {
    return FillResponse(servers_->Register(caller, *req),
                        [resp](v1::Server s) { *resp->mutable_server() = std::move(s); });
  });
}

grpc::ServerUnaryReactor* InfraServiceImpl::ProvisionServer(grpc::CallbackServerContext* ctx,
                                                            const v1::ProvisionServerRequest* req,
                                                            v1::ProvisionServerResponse* resp) {
  return ServeUnary(ctx, *reaching_, [this, req, resp](const Principal& caller) -> absl::Status {
    return FillResponse(Provision(caller, *req),
                        [resp](jobs::v1::Job j) { *resp->mutable_job() = std::move(j); });
  });
}

absl::StatusOr<jobs::v1::Job> InfraServiceImpl::Provision(
    const Principal& caller, const v1::ProvisionServerRequest& request) {
  if (request.server_id().empty()) return absl::InvalidArgumentError("server_id: required");
  const auto earlier_job = [&]() -> absl::StatusOr<std::optional<jobs::v1::Job>> {
    if (request.request_id().empty()) return std::nullopt;
    auto earlier = jobs_->FindByRequest(caller.user_id, request.request_id());
    if (!earlier.ok() || !*earlier) return earlier;
    const auto& params = (*earlier)->params().fields();
    const auto server = params.find("server_id");
    if ((*earlier)->kind() != kProvisionJobKind || server == params.end() ||
        server->second.string_value() != request.server_id()) {
      return absl::FailedPreconditionError(absl::StrCat("request_id '", request.request_id(),
                                                        "' was used for another request (job ",
                                                        (*earlier)->id(), ")"));
    }
    return earlier;
  };
  auto earlier = earlier_job();
  if (!earlier.ok()) return earlier.status();
  if (*earlier) return **earlier;
  auto server = servers_->Get(caller, request.server_id());
  if (!server.ok()) return server.status();
  if (server->kind() != v1::SERVER_KIND_SSH) {
    return absl::FailedPreconditionError(
        absl::StrCat("server ", server->name(), " is ", v1::ServerKind_Name(server->kind()),
                     server->kind() == v1::SERVER_KIND_LOCAL
                         ? ": the machine the mesh runs on needs no provisioning"
                         : ": only SSH servers are provisioned"));
  }
  if (server->owner_id() != caller.user_id) {
    return absl::PermissionDeniedError(absl::StrCat(
        "server ", server->id(), " belongs to another user: only its owner provisions it"));
  }
  if (server->status() == v1::SERVER_STATUS_PROVISIONING) {
    // Its job again, rather than a second one queued behind it.
    auto running = jobs_->Get(server->provision_job_id());
    if (running.ok() && !jobs::IsTerminal(running->state())) return running;
  }
  // An unreachable server is answered at once, not by a failed job later.
  if (auto s = provisioner_->CheckReachable(*server); !s.ok()) return s;
  jobs::EnqueueRequest queued = ProvisionJob(caller.user_id, server->id(), request.request_id());
  queued.origin = jobs::OriginOf(caller);
  auto job = jobs_->Enqueue(queued, absl::Now());
  if (job.status().code() == absl::StatusCode::kAlreadyExists) {
    // The same request_id, at the same moment.
    auto again = earlier_job();
    if (again.ok() && *again) return **again;
  }
  if (!job.ok()) return job.status();
  // Best effort: the job records itself on the server when it starts.
  (void)provisioner_->NoteQueued(server->id(), job->id());
  return job;
}

grpc::ServerUnaryReactor* InfraServiceImpl::ListServers(grpc::CallbackServerContext* ctx,
                                                        const v1::ListServersRequest* req,
                                                        v1::ListServersResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) -> absl::Status {
    return FillResponse(servers_->List(caller, *req),
                        [resp](v1::ListServersResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* InfraServiceImpl::GetServer(grpc::CallbackServerContext* ctx,
                                                      const v1::GetServerRequest* req,
                                                      v1::GetServerResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) -> absl::Status {
    return FillResponse(servers_->Get(caller, req->server_id()),
                        [resp](v1::Server s) { *resp->mutable_server() = std::move(s); });
  });
}

grpc::ServerUnaryReactor* InfraServiceImpl::GetServerAccess(grpc::CallbackServerContext* ctx,
                                                            const v1::GetServerAccessRequest* req,
                                                            v1::GetServerAccessResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) -> absl::Status {
    auto server = servers_->Get(caller, req->server_id());
    if (!server.ok()) return server.status();
    return FillResponse(provisioner_->DeployAccess(*server),
                        [resp](v1::GetServerAccessResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* InfraServiceImpl::AllocatePort(grpc::CallbackServerContext* ctx,
                                                         const v1::AllocatePortRequest* req,
                                                         v1::AllocatePortResponse* resp) {
  return ServeUnaryForProject(ctx, executor_, visibility_.get(), "project_id", req->project_id(),
                              [this, req, resp](const Principal& caller) -> absl::Status {
                                if (req->project_id().empty()) {
                                  return absl::InvalidArgumentError("project_id: required");
                                }
                                return FillResponse(allocations_->Allocate(caller, *req),
                                                    [resp](v1::Allocation a) {
                                                      *resp->mutable_allocation() = std::move(a);
                                                    });
                              });
}

grpc::ServerUnaryReactor* InfraServiceImpl::ListAllocations(grpc::CallbackServerContext* ctx,
                                                            const v1::ListAllocationsRequest* req,
                                                            v1::ListAllocationsResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) -> absl::Status {
    return FillResponse(allocations_->List(caller, *req),
                        [resp](v1::ListAllocationsResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* InfraServiceImpl::ReleaseAllocation(
    grpc::CallbackServerContext* ctx, const v1::ReleaseAllocationRequest* req,
    v1::ReleaseAllocationResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) -> absl::Status {
    return FillResponse(allocations_->Release(caller, *req, absl::Now()),
                        [resp](v1::Allocation a) { *resp->mutable_allocation() = std::move(a); });
  });
}

grpc::ServerWriteReactor<v1::GetServiceLogsResponse>* InfraServiceImpl::GetServiceLogs(
    grpc::CallbackServerContext* ctx, const v1::GetServiceLogsRequest* req) {
  auto writer = QueuedWriter<v1::GetServiceLogsResponse>::Create();
  auto caller = CallerOf(ctx);
  if (!caller.ok()) {
    writer->End(caller.status());
    return writer.get();
  }
  if (req->project_id().empty()) {
    writer->End(absl::InvalidArgumentError("project_id: required"));
    return writer.get();
  }
  if (visibility_ == nullptr) {
    writer->End(absl::FailedPreconditionError(
        "project_id: this server cannot reach ProjectService to check the project"));
    return writer.get();
  }
  // The caller leaving (or not reading) ends the engine's stream.
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  writer->OnFinished([cancel] { cancel->store(true); });
  visibility_->FindOwner(
      CredentialsOf(*ctx), "project_id", req->project_id(),
      [this, writer, cancel, request = *req](absl::StatusOr<std::string> owner) {
        if (!owner.ok()) return writer->End(owner.status());
        if (auto s = Enter(cancel, *owner); !s.ok()) return writer->End(s);
        // A stream may wait for a slow client, or for new lines as long as
        // it follows: on a thread of the streams', never the executor's.
        absl::Status queued = followers_->Submit([this, writer, cancel, request, owner = *owner] {
          const auto send = [this, writer](v1::GetServiceLogsResponse lines) {
            writer->Push(std::move(lines));
            if (writer->AwaitRoom(limits_.max_queued_bytes, limits_.client_patience)) return true;
            writer->End(absl::ResourceExhaustedError(
                absl::StrCat("the client did not read the stream for ",
                             absl::FormatDuration(limits_.client_patience))));
            return false;
          };
          absl::Status ended = diagnostics_->StreamLogs(owner, request, send, cancel.get());
          // Counted out first: the caller may ask again at once.
          Leave(cancel, owner);
          writer->End(ended);
        });
        if (!queued.ok()) {
          Leave(cancel, *owner);
          writer->End(queued);
        }
      });
  return writer.get();
}

absl::Status InfraServiceImpl::Enter(const CancelFlag& cancel, const std::string& owner) {
  absl::MutexLock lock(&streams_mu_);
  if (draining_) return absl::UnavailableError("the server is shutting down: ask another");
  if (static_cast<int>(streams_.size()) >= limits_.max_following) {
    return absl::ResourceExhaustedError(absl::StrCat("this server streams ", limits_.max_following,
                                                     " logs already: try again later"));
  }
  if (per_owner_[owner] >= limits_.max_per_owner) {
    return absl::ResourceExhaustedError(
        absl::StrCat("you stream ", limits_.max_per_owner,
                     " logs already: end one (a follow ends when you cancel it) first"));
  }
  ++per_owner_[owner];
  streams_.insert(cancel);
  return absl::OkStatus();
}

void InfraServiceImpl::Leave(const CancelFlag& cancel, const std::string& owner) {
  absl::MutexLock lock(&streams_mu_);
  if (auto it = per_owner_.find(owner); it != per_owner_.end() && --it->second <= 0) {
    per_owner_.erase(it);
  }
  streams_.erase(cancel);
}

void InfraServiceImpl::EndLogStreams() {
  absl::MutexLock lock(&streams_mu_);
  draining_ = true;
  for (const auto& cancel : streams_) cancel->store(true);
}

grpc::ServerUnaryReactor* InfraServiceImpl::CheckServiceHealth(
    grpc::CallbackServerContext* ctx, const v1::CheckServiceHealthRequest* req,
    v1::CheckServiceHealthResponse* resp) {
  return ServeUnaryForProjectOwner(
      ctx, executor_, visibility_.get(), "project_id", req->project_id(),
      [this, req, resp](const Principal&, const std::string& owner) -> absl::Status {
        return FillResponse(diagnostics_->CheckHealth(owner, req->project_id()),
                            [resp](v1::CheckServiceHealthResponse r) { *resp = std::move(r); });
      });
}

grpc::ServerUnaryReactor* InfraServiceImpl::GetErrorHistory(grpc::CallbackServerContext* ctx,
                                                            const v1::GetErrorHistoryRequest* req,
                                                            v1::GetErrorHistoryResponse* resp) {
  return ServeUnaryForProjectOwner(
      ctx, executor_, visibility_.get(), "project_id", req->project_id(),
      [this, req, resp](const Principal&, const std::string& owner) -> absl::Status {
        return FillResponse(diagnostics_->ErrorHistory(owner, *req),
                            [resp](v1::GetErrorHistoryResponse r) { *resp = std::move(r); });
      });
}

}  // namespace orchestrator::infra
