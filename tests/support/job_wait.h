#pragma once

#include <chrono>
#include <string>

#include "gtest/gtest.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "tests/support/test_mesh.h"

namespace orchestrator::testing {

// Streams a job with `token` until it ends (WatchJob, at most `timeout`);
// returns it as it ended.
inline jobs::v1::Job WaitForJob(jobs::v1::JobService::Stub& jobs, const std::string& token,
                                const std::string& job_id,
                                std::chrono::seconds timeout = std::chrono::seconds(180)) {
  jobs::v1::WatchJobRequest req;
  req.set_job_id(job_id);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + token);
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  auto reader = jobs.WatchJob(&ctx, req);
  jobs::v1::WatchJobResponse event;
  while (reader->Read(&event)) {
  }
  reader->Finish().IgnoreError();
  jobs::v1::GetJobRequest get;
  get.set_job_id(job_id);
  jobs::v1::GetJobResponse got;
  EXPECT_TRUE(jobs.GetJob(TestMesh::Context(token).get(), get, &got).ok());
  return got.job();
}

}  // namespace orchestrator::testing
