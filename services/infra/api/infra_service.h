#pragma once

#include <memory>

#include "orchestrator/infra/v1/infra.grpc.pb.h"
#include "services/common/executor/bounded_executor.h"
#include "services/common/peers/project_visibility.h"
#include "services/infra/domain/port_allocator.h"
#include "services/infra/domain/servers.h"

namespace orchestrator::infra {

// InfraService: servers and port allocations. Registering and provisioning
// servers and the diagnostics are not built yet (UNIMPLEMENTED).
class InfraServiceImpl final : public v1::InfraService::CallbackService {
 public:
  // `executor` runs the bodies, once ProjectService has said the caller
  // sees the project a request names.
  InfraServiceImpl(std::shared_ptr<ServerCatalog> servers,
                   std::shared_ptr<PortAllocator> allocations, ProjectVisibilityPtr visibility,
                   BoundedExecutorPtr executor)
      : servers_(std::move(servers)),
        allocations_(std::move(allocations)),
        visibility_(std::move(visibility)),
        executor_(std::move(executor)) {}

  grpc::ServerUnaryReactor* ListServers(grpc::CallbackServerContext* ctx,
                                        const v1::ListServersRequest* req,
                                        v1::ListServersResponse* resp) override;
  grpc::ServerUnaryReactor* GetServer(grpc::CallbackServerContext* ctx,
                                      const v1::GetServerRequest* req,
                                      v1::GetServerResponse* resp) override;
  grpc::ServerUnaryReactor* AllocatePort(grpc::CallbackServerContext* ctx,
                                         const v1::AllocatePortRequest* req,
                                         v1::AllocatePortResponse* resp) override;
  grpc::ServerUnaryReactor* ListAllocations(grpc::CallbackServerContext* ctx,
                                            const v1::ListAllocationsRequest* req,
                                            v1::ListAllocationsResponse* resp) override;
  grpc::ServerUnaryReactor* ReleaseAllocation(grpc::CallbackServerContext* ctx,
                                              const v1::ReleaseAllocationRequest* req,
                                              v1::ReleaseAllocationResponse* resp) override;

 private:
  std::shared_ptr<ServerCatalog> servers_;
  std::shared_ptr<PortAllocator> allocations_;
  ProjectVisibilityPtr visibility_;
  BoundedExecutorPtr executor_;
};

}  // namespace orchestrator::infra
