#pragma once

#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "orchestrator/agents/v1/agents.grpc.pb.h"

namespace orchestrator::testing {

// Watches worker `id` (as `token`) until it reaches `state` or its stream
// ends (it ended, or `timeout` passed); returns what it saw last.
inline agents::v1::Worker WaitForWorker(agents::v1::AgentService::Stub& stub,
                                        const std::string& token, const std::string& id,
                                        agents::v1::WorkerState state, absl::Duration timeout) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + token);
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  agents::v1::WatchWorkerRequest req;
  req.set_worker_id(id);
  auto reader = stub.WatchWorker(&ctx, req);
  agents::v1::WatchWorkerResponse resp;
  agents::v1::Worker last;
  while (reader->Read(&resp)) {
    last = resp.worker();
    if (last.state() == state) {
      ctx.TryCancel();
      break;
    }
  }
  reader->Finish();
  return last;
}

// A task run to its end: what the stream carried.
struct TaskRun {
  std::vector<agents::v1::AgentEvent> events;
  agents::v1::TaskResult result;
  grpc::Status status;
};

// Runs `prompt` on worker `worker_id` (as `token`), with a timeout of its
// own unless zero and resuming agent session `session` unless empty.
inline TaskRun RunTaskOn(agents::v1::AgentService::Stub& stub, const std::string& token,
                         const std::string& worker_id, const std::string& prompt,
                         absl::Duration timeout = absl::ZeroDuration(),
                         const std::string& session = "") {
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + token);
  agents::v1::RunTaskRequest req;
  req.set_worker_id(worker_id);
  req.set_prompt(prompt);
  req.set_agent_session_id(session);
  if (timeout > absl::ZeroDuration()) {
    req.mutable_timeout()->set_seconds(absl::ToInt64Seconds(timeout));
  }
  auto reader = stub.RunTask(&ctx, req);
  TaskRun run;
  agents::v1::RunTaskResponse resp;
  while (reader->Read(&resp)) {
    if (resp.has_event()) run.events.push_back(resp.event());
    if (resp.has_result()) run.result = resp.result();
  }
  run.status = reader->Finish();
  return run;
}

}  // namespace orchestrator::testing
