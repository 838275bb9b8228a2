#pragma once

#include <memory>

#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "services/common/executor/bounded_executor.h"
#include "services/common/peers/project_visibility.h"
#include "services/jobs/domain/job_board.h"
#include "services/jobs/domain/project_history.h"
#include "services/jobs/store/job_event_hub.h"
#include "services/jobs/store/pg_job_store.h"

namespace orchestrator::jobs {

struct JobServiceOptions {
  bool demo_jobs = false;
  // Checks that the caller may see a project id a request names, through
  // ProjectService; null where projects cannot be reached (such ids are refused).
  ProjectVisibilityPtr projects = nullptr;
  // Live events a watcher may have queued before it falls back to reading
  // from the database (WatchJob) or is ended with RESOURCE_EXHAUSTED
  // (WatchJobs), so one slow client never holds memory or others up.
  size_t max_pending_per_watcher = 64;
  // The session messages a project's history names; null: shown without
  // them.
  SessionMessagesPtr messages = nullptr;
};

// Wires JobService to the JobBoard (unary RPCs) and the JobEventHub (watch
// streams, as callback reactors: no thread per stream).
class JobServiceImpl final : public v1::JobService::CallbackService {
 public:
  JobServiceImpl(std::shared_ptr<JobBoard> board, std::shared_ptr<PgJobStore> store,
                 JobEventHub* hub, BoundedExecutorPtr executor, JobServiceOptions options);

  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* ctx, const v1::GetJobRequest* req,
                                   v1::GetJobResponse* resp) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* ctx,
                                     const v1::ListJobsRequest* req,
                                     v1::ListJobsResponse* resp) override;
  grpc::ServerUnaryReactor* ListJobEvents(grpc::CallbackServerContext* ctx,
                                          const v1::ListJobEventsRequest* req,
                                          v1::ListJobEventsResponse* resp) override;
  grpc::ServerWriteReactor<v1::WatchJobResponse>* WatchJob(grpc::CallbackServerContext* ctx,
                                                           const v1::WatchJobRequest* req) override;
  grpc::ServerWriteReactor<v1::WatchJobsResponse>* WatchJobs(
      grpc::CallbackServerContext* ctx, const v1::WatchJobsRequest* req) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* ctx,
                                      const v1::CancelJobRequest* req,
                                      v1::CancelJobResponse* resp) override;
  grpc::ServerUnaryReactor* RetryJob(grpc::CallbackServerContext* ctx,
                                     const v1::RetryJobRequest* req,
                                     v1::RetryJobResponse* resp) override;
  grpc::ServerUnaryReactor* ClearProjectJobs(grpc::CallbackServerContext* ctx,
                                             const v1::ClearProjectJobsRequest* req,
                                             v1::ClearProjectJobsResponse* resp) override;
  grpc::ServerUnaryReactor* ListProjectHistory(grpc::CallbackServerContext* ctx,
                                               const v1::ListProjectHistoryRequest* req,
                                               v1::ListProjectHistoryResponse* resp) override;
  grpc::ServerUnaryReactor* EnqueueDemoJob(grpc::CallbackServerContext* ctx,
                                           const v1::EnqueueDemoJobRequest* req,
                                           v1::EnqueueDemoJobResponse* resp) override;

  struct Shared {
    std::shared_ptr<JobBoard> board;
    std::shared_ptr<PgJobStore> store;
    JobEventHub* hub;
    BoundedExecutorPtr executor;
    JobServiceOptions options;
  };

 private:
  std::shared_ptr<const Shared> shared_;
};

}  // namespace orchestrator::jobs
