#include "services/infra/api/infra_service.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/common/peers/serve_for_project.h"
#include "services/common/rpc/queued_writer.h"
#include "services/common/rpc/serve_unary.h"

namespace orchestrator::infra {

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
