#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/synchronization/mutex.h"
#include "orchestrator/infra/v1/infra.grpc.pb.h"
#include "services/common/executor/bounded_executor.h"
#include "services/common/peers/project_visibility.h"
#include "services/infra/domain/port_allocator.h"
#include "services/infra/domain/provisioner.h"
#include "services/infra/domain/servers.h"
#include "services/infra/domain/service_diagnostics.h"
#include "services/jobs/store/pg_job_store.h"

namespace orchestrator::infra {

struct LogStreamLimits {
  // Log streams at once, each holding one of the streams' threads until it
  // ends (more are RESOURCE_EXHAUSTED), and at once per owner.
  int max_following = 8;
  int max_per_owner = 2;
  // How long a stream waits for a client that does not read before it ends
  // with RESOURCE_EXHAUSTED.
  absl::Duration client_patience = absl::Minutes(1);
  // Bytes queued for the client before the stream waits for it.
  size_t max_queued_bytes = 1 << 20;
};

// InfraService: servers (registered, provisioned by jobs), port
// allocations and the diagnostics of deployed services.
class InfraServiceImpl final : public v1::InfraService::CallbackService {
 public:
  // `executor` runs the bodies, once ProjectService has said the caller
  // sees the project a request names; `followers` runs the log streams
  // (which may wait for a slow client, or for new lines as long as they
  // follow), so that they never hold the executor's threads. Provision
  // jobs go to `jobs`, run by the component's engine with `provisioner`.
  InfraServiceImpl(std::shared_ptr<ServerCatalog> servers,
                   std::shared_ptr<PortAllocator> allocations,
                   std::shared_ptr<ServiceDiagnostics> diagnostics,
                   std::shared_ptr<Provisioner> provisioner, std::shared_ptr<jobs::PgJobStore> jobs,
                   ProjectVisibilityPtr visibility, BoundedExecutorPtr executor,
                   BoundedExecutorPtr followers, LogStreamLimits limits = {})
      : servers_(std::move(servers)),
        allocations_(std::move(allocations)),
        diagnostics_(std::move(diagnostics)),
        provisioner_(std::move(provisioner)),
        jobs_(std::move(jobs)),
        visibility_(std::move(visibility)),
        limits_(limits),
        executor_(std::move(executor)),
        followers_(std::move(followers)) {}

  grpc::ServerUnaryReactor* RegisterServer(grpc::CallbackServerContext* ctx,
                                           const v1::RegisterServerRequest* req,
                                           v1::RegisterServerResponse* resp) override;
  grpc::ServerUnaryReactor* ProvisionServer(grpc::CallbackServerContext* ctx,
                                            const v1::ProvisionServerRequest* req,
                                            v1::ProvisionServerResponse* resp) override;
  grpc::ServerUnaryReactor* ListServers(grpc::CallbackServerContext* ctx,
                                        const v1::ListServersRequest* req,
                                        v1::ListServersResponse* resp) override;
  grpc::ServerUnaryReactor* GetServer(grpc::CallbackServerContext* ctx,
                                      const v1::GetServerRequest* req,
                                      v1::GetServerResponse* resp) override;
  grpc::ServerUnaryReactor* GetServerAccess(grpc::CallbackServerContext* ctx,
                                            const v1::GetServerAccessRequest* req,
                                            v1::GetServerAccessResponse* resp) override;
  grpc::ServerUnaryReactor* AllocatePort(grpc::CallbackServerContext* ctx,
                                         const v1::AllocatePortRequest* req,
                                         v1::AllocatePortResponse* resp) override;
  grpc::ServerUnaryReactor* ListAllocations(grpc::CallbackServerContext* ctx,
                                            const v1::ListAllocationsRequest* req,
                                            v1::ListAllocationsResponse* resp) override;
  grpc::ServerUnaryReactor* ReleaseAllocation(grpc::CallbackServerContext* ctx,
                                              const v1::ReleaseAllocationRequest* req,
                                              v1::ReleaseAllocationResponse* resp) override;
  grpc::ServerWriteReactor<v1::GetServiceLogsResponse>* GetServiceLogs(
      grpc::CallbackServerContext* ctx, const v1::GetServiceLogsRequest* req) override;
  grpc::ServerUnaryReactor* CheckServiceHealth(grpc::CallbackServerContext* ctx,
                                               const v1::CheckServiceHealthRequest* req,
                                               v1::CheckServiceHealthResponse* resp) override;
  grpc::ServerUnaryReactor* GetErrorHistory(grpc::CallbackServerContext* ctx,
                                            const v1::GetErrorHistoryRequest* req,
                                            v1::GetErrorHistoryResponse* resp) override;

  // Ends the log streams in flight and refuses new ones (the server drains).
  void EndLogStreams();

 private:
  using CancelFlag = std::shared_ptr<std::atomic<bool>>;
  // Counts a log stream of `owner`'s project in (RESOURCE_EXHAUSTED past
  // max_following, or max_per_owner for the owner; UNAVAILABLE once
  // draining) and out.
  absl::Status Enter(const CancelFlag& cancel, const std::string& owner);
  // ProvisionServer's body.
  absl::StatusOr<jobs::v1::Job> Provision(const Principal& caller,
                                          const v1::ProvisionServerRequest& request);
  void Leave(const CancelFlag& cancel, const std::string& owner);

  std::shared_ptr<ServerCatalog> servers_;
  std::shared_ptr<PortAllocator> allocations_;
  std::shared_ptr<ServiceDiagnostics> diagnostics_;
  std::shared_ptr<Provisioner> provisioner_;
  std::shared_ptr<jobs::PgJobStore> jobs_;
  ProjectVisibilityPtr visibility_;
  const LogStreamLimits limits_;

  absl::Mutex streams_mu_;
  // The log streams running now (their cancel flags), how many each owner
  // has, and whether the server drains.
  std::set<CancelFlag> streams_ ABSL_GUARDED_BY(streams_mu_);
  std::map<std::string, int> per_owner_ ABSL_GUARDED_BY(streams_mu_);
  bool draining_ ABSL_GUARDED_BY(streams_mu_) = false;

  // Last: when the service goes, the threads still running a stream (the
  // executors' last owners are these) are joined before anything they use
  // is destroyed.
  BoundedExecutorPtr executor_;
  BoundedExecutorPtr followers_;
  // ProvisionServer waits for ssh to answer (up to its connect timeout):
  // on threads of its own, so slow servers never hold up the other RPCs.
  BoundedExecutorPtr reaching_ = std::make_shared<BoundedExecutor>(2, 32);
};

}  // namespace orchestrator::infra
