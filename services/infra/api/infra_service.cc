#include "services/infra/api/infra_service.h"

#include "absl/time/clock.h"
#include "services/common/peers/serve_for_project.h"
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

}  // namespace orchestrator::infra
