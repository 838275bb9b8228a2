#pragma once

#include <grpcpp/client_context.h>

#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "orchestrator/agents/v1/agents.grpc.pb.h"

namespace orchestrator::testing {

// A worker driven from a test with the scripted agent, through AgentService
// as `token`'s user: started and waited for, then told to run shell commands
// inside its sandbox ("run: <command>").
class ScriptedWorkers final {
 public:
  ScriptedWorkers(agents::v1::AgentService::Stub* stub, std::string token)
      : stub_(stub), token_(std::move(token)) {}

  // Starts the worker (scripted agent; developer unless `req` says) and
  // returns it once it has left STARTING; expects READY.
  agents::v1::Worker StartReady(agents::v1::StartWorkerRequest req) const {
    namespace v1 = agents::v1;
    if (req.config().worker_type() == v1::WORKER_TYPE_UNSPECIFIED) {
      req.mutable_config()->set_worker_type(v1::WORKER_TYPE_DEVELOPER);
    }
    req.mutable_config()->set_agent_type(v1::AGENT_TYPE_SCRIPTED);
    v1::StartWorkerResponse resp;
    grpc::Status s = stub_->StartWorker(Context(20).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    auto ctx = Context(20);
    v1::WatchWorkerRequest watch;
    watch.set_worker_id(resp.worker().id());
    auto reader = stub_->WatchWorker(ctx.get(), watch);
    v1::WatchWorkerResponse seen;
    while (reader->Read(&seen) && seen.worker().state() == v1::WORKER_STATE_STARTING) {
    }
    ctx->TryCancel();
    reader->Finish();
    EXPECT_EQ(seen.worker().state(), v1::WORKER_STATE_READY) << seen.worker().state_reason();
    return seen.worker();
  }

  // Runs `command` with /bin/sh inside the worker's sandbox; the result's
  // summary is "exit N\n" and what it printed.
  agents::v1::TaskResult Run(const std::string& worker_id, const std::string& command) const {
    auto ctx = Context(60);
    agents::v1::RunTaskRequest req;
    req.set_worker_id(worker_id);
    req.set_prompt("run: " + command);
    auto reader = stub_->RunTask(ctx.get(), req);
    agents::v1::RunTaskResponse resp;
    agents::v1::TaskResult result;
    while (reader->Read(&resp)) {
      if (resp.has_result()) result = resp.result();
    }
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return result;
  }

 private:
  std::unique_ptr<grpc::ClientContext> Context(int seconds) const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", "Bearer " + token_);
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(seconds)));
    return ctx;
  }

  agents::v1::AgentService::Stub* stub_;
  std::string token_;
};

}  // namespace orchestrator::testing
