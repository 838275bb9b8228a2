#include "services/agents/api/agent_service.h"

#include <deque>

#include "absl/strings/str_cat.h"
#include "services/common/peers/serve_for_project.h"
#include "services/common/rpc/call_context.h"
#include "services/common/rpc/queued_writer.h"
#include "services/common/rpc/serve_unary.h"

namespace orchestrator::agents {
namespace {

bool Ended(v1::WorkerState s) {
  return s == v1::WORKER_STATE_STOPPED || s == v1::WORKER_STATE_FAILED;
}

// The runner's connection: reads are handled one at a time on the executor
// (the spawner writes to the database), writes are queued.
class ConnectReactor final
    : public grpc::ServerBidiReactor<v1::ConnectRequest, v1::ConnectResponse>,
      public RunnerLink {
 public:
  ConnectReactor(grpc::CallbackServerContext* ctx, std::shared_ptr<Workers> spawner,
                 BoundedExecutorPtr executor)
      : ctx_(ctx), spawner_(std::move(spawner)), executor_(std::move(executor)) {}

  void Begin(std::shared_ptr<ConnectReactor> self) {
    self_ = std::move(self);
    auto caller = CallerOf(ctx_);
    if (!caller.ok()) return Close(caller.status());
    caller_ = *caller;
    StartRead(&in_);
  }

  // RunnerLink
  void Send(const v1::ConnectResponse& message) override {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    out_.push_back(message);
    PumpLocked();
  }
  void Close(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    if (finished_ || closing_) return;
    closing_ = true;
    close_status_ = status;
    PumpLocked();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Close(absl::OkStatus());
      Gone("the runner closed its stream");
      return;
    }
    // Every message is held to the contract's bounds by the interceptor; one
    // out of bounds ends the connection (and the worker) with the reason.
    if (auto refused = CallerOf(ctx_); !refused.ok()) {
      Close(refused.status());
      Gone(absl::StrCat("the runner sent a message out of bounds: ", refused.status().message()));
      return;
    }
    {
      // No read is outstanding until Handle starts the next: Finish waits.
      absl::MutexLock lock(&mu_);
      handling_ = true;
    }
    auto self = self_;
    v1::ConnectRequest message = in_;
    absl::Status queued =
        executor_->Submit([self, message = std::move(message)] { self->Handle(message); });
    if (!queued.ok()) {
      absl::MutexLock lock(&mu_);
      handling_ = false;
      closing_ = true;
      close_status_ = queued;
      PumpLocked();
    }
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      out_.clear();
      if (!finished_) {
        finished_ = true;
        Finish(grpc::Status(grpc::StatusCode::CANCELLED, "runner went away"));
      }
      return;
    }
    out_.pop_front();
    PumpLocked();
  }

  void OnCancel() override { Close(absl::CancelledError("runner cancelled")); }

  void OnDone() override {
    auto self = std::move(self_);
    // Telling the spawner may block (it records the failure): not here.
    if (!executor_->Submit([self] { self->Gone("the runner's stream ended"); }).ok()) {
      self->Gone("the runner's stream ended");
    }
  }

 private:
  void Handle(const v1::ConnectRequest& message) {
    absl::Status status;
    if (worker_id_.empty()) {
      if (!message.has_hello()) {
        status = absl::FailedPreconditionError("the runner must say hello first");
      } else {
        // The spawner sends the welcome through Send, before any task.
        auto config = spawner_->RunnerConnected(caller_, message.hello(), this);
        if (config.ok()) {
          worker_id_ = message.hello().worker_id();
        } else {
          status = config.status();
        }
      }
    } else if (message.has_event()) {
      spawner_->RunnerEvent(worker_id_, message.event());
    } else if (message.has_result()) {
      spawner_->RunnerResult(worker_id_, message.result());
    }
    absl::MutexLock lock(&mu_);
    handling_ = false;
    if (!status.ok() && !closing_) {
      closing_ = true;
      close_status_ = status;
    }
    if (closing_ || finished_) return PumpLocked();  // the deferred Finish, if any
    // Under the lock, so a concurrent Close cannot Finish in between; the
    // read's reaction runs on gRPC's threads, never inline here.
    StartRead(&in_);
  }

  void Gone(const std::string& reason) {
    if (!worker_id_.empty()) spawner_->RunnerGone(worker_id_, this, reason);
  }

  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_) return;
    if (!out_.empty()) {
      writing_ = true;
      StartWrite(&out_.front());
      return;
    }
    // Not while a message is being handled: it would start another read
    // after the call is over.
    if (closing_ && !handling_) {
      finished_ = true;
      Finish(ToGrpcStatus(close_status_));
    }
  }

  grpc::CallbackServerContext* ctx_;
  std::shared_ptr<Workers> spawner_;
  BoundedExecutorPtr executor_;
  std::shared_ptr<ConnectReactor> self_;
  Principal caller_;
  std::string worker_id_;  // set once, on the executor, before the next read
  v1::ConnectRequest in_;
  absl::Mutex mu_;
  std::deque<v1::ConnectResponse> out_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool handling_ ABSL_GUARDED_BY(mu_) = false;  // a read completed; no other outstanding
  absl::Status close_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::ServerUnaryReactor* AgentServiceImpl::StartWorker(grpc::CallbackServerContext* ctx,
                                                        const v1::StartWorkerRequest* req,
                                                        v1::StartWorkerResponse* resp) {
  return ServeUnaryForProject(
      ctx, executor_, projects_.get(), "config.project_id", req->config().project_id(),
      [this, req, resp](const Principal& caller) {
        return FillResponse(spawner_->Start(caller, *req),
                            [resp](v1::Worker w) { *resp->mutable_worker() = std::move(w); });
      });
}

grpc::ServerUnaryReactor* AgentServiceImpl::PauseWorker(grpc::CallbackServerContext* ctx,
                                                        const v1::PauseWorkerRequest* req,
                                                        v1::PauseWorkerResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(spawner_->Pause(caller, req->worker_id()),
                        [resp](v1::Worker w) { *resp->mutable_worker() = std::move(w); });
  });
}

grpc::ServerUnaryReactor* AgentServiceImpl::ResumeWorker(grpc::CallbackServerContext* ctx,
                                                         const v1::ResumeWorkerRequest* req,
                                                         v1::ResumeWorkerResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(spawner_->Resume(caller, req->worker_id()),
                        [resp](v1::Worker w) { *resp->mutable_worker() = std::move(w); });
  });
}

grpc::ServerUnaryReactor* AgentServiceImpl::StopWorker(grpc::CallbackServerContext* ctx,
                                                       const v1::StopWorkerRequest* req,
                                                       v1::StopWorkerResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(spawner_->Stop(caller, req->worker_id(), req->reason()),
                        [resp](v1::Worker w) { *resp->mutable_worker() = std::move(w); });
  });
}

grpc::ServerUnaryReactor* AgentServiceImpl::GetWorker(grpc::CallbackServerContext* ctx,
                                                      const v1::GetWorkerRequest* req,
                                                      v1::GetWorkerResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(spawner_->Get(caller, req->worker_id()),
                        [resp](v1::Worker w) { *resp->mutable_worker() = std::move(w); });
  });
}

grpc::ServerUnaryReactor* AgentServiceImpl::ListWorkers(grpc::CallbackServerContext* ctx,
                                                        const v1::ListWorkersRequest* req,
                                                        v1::ListWorkersResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(spawner_->List(caller, *req),
                        [resp](v1::ListWorkersResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* AgentServiceImpl::FinishTask(grpc::CallbackServerContext* ctx,
                                                       const v1::FinishTaskRequest* req,
                                                       v1::FinishTaskResponse* resp) {
  return ServeUnary(ctx, *executor_, [this, req, resp](const Principal& caller) {
    return FillResponse(spawner_->Finish(caller, *req),
                        [resp](std::string id) { resp->set_task_id(std::move(id)); });
  });
}

grpc::ServerWriteReactor<v1::RunTaskResponse>* AgentServiceImpl::RunTask(
    grpc::CallbackServerContext* ctx, const v1::RunTaskRequest* req) {
  auto writer = QueuedWriter<v1::RunTaskResponse>::Create();
  auto caller = CallerOf(ctx);
  if (!caller.ok()) {
    writer->End(caller.status());
    return writer.get();
  }
  std::weak_ptr<QueuedWriter<v1::RunTaskResponse>> weak = writer;
  TaskListener listener{[weak](const v1::AgentEvent& e) {
                          if (auto w = weak.lock()) {
                            v1::RunTaskResponse r;
                            *r.mutable_event() = e;
                            w->Push(std::move(r));
                          }
                        },
                        [weak](const v1::TaskResult& result) {
                          if (auto w = weak.lock()) {
                            v1::RunTaskResponse r;
                            *r.mutable_result() = result;
                            w->Push(std::move(r));
                            w->End(absl::OkStatus());
                          }
                        }};
  absl::Status queued = executor_->Submit(
      [this, writer, caller = *caller, req = *req, listener = std::move(listener)]() mutable {
        uint64_t handle = 0;
        auto task = spawner_->RunTask(caller, req, std::move(listener), &handle);
        if (!task.ok()) return writer->End(task.status());
        // The caller leaving cancels the task (RunTask's contract).
        writer->OnFinished([spawner = spawner_, worker = req.worker_id(), handle] {
          spawner->Detach(worker, handle, /*cancel=*/true);
        });
      });
  if (!queued.ok()) writer->End(queued);
  return writer.get();
}

grpc::ServerWriteReactor<v1::RunCommandResponse>* AgentServiceImpl::RunCommand(
    grpc::CallbackServerContext* ctx, const v1::RunCommandRequest* req) {
  // Output is not held back for a slow reader: room for a large bundle.
  auto writer = QueuedWriter<v1::RunCommandResponse>::Create(size_t{32} << 20);
  auto caller = CallerOf(ctx);
  if (!caller.ok()) {
    writer->End(caller.status());
    return writer.get();
  }
  std::weak_ptr<QueuedWriter<v1::RunCommandResponse>> weak = writer;
  TaskListener listener{
      [weak](const v1::AgentEvent& e) {
        if (!e.has_command_output()) return;
        if (auto w = weak.lock()) {
          v1::RunCommandResponse r;
          *r.mutable_output() = e.command_output();
          w->Push(std::move(r));
        }
      },
      [weak](const v1::TaskResult& result) {
        auto w = weak.lock();
        if (w == nullptr) return;
        if (result.has_command()) {
          v1::RunCommandResponse r;
          *r.mutable_result() = result.command();
          w->Push(std::move(r));
          return w->End(absl::OkStatus());
        }
        // It never ran, or its worker ended under it.
        const std::string why = absl::StrCat("the command did not finish: ", result.summary());
        w->End(result.status() == v1::TASK_STATUS_CANCELLED ? absl::CancelledError(why)
                                                            : absl::AbortedError(why));
      }};
  absl::Status queued = executor_->Submit(
      [this, writer, caller = *caller, req = *req, listener = std::move(listener)]() mutable {
        uint64_t handle = 0;
        auto task = spawner_->RunCommand(caller, req, std::move(listener), &handle);
        if (!task.ok()) return writer->End(task.status());
        // The caller leaving cancels the command, as for RunTask.
        writer->OnFinished([spawner = spawner_, worker = req.worker_id(), handle] {
          spawner->Detach(worker, handle, /*cancel=*/true);
        });
      });
  if (!queued.ok()) writer->End(queued);
  return writer.get();
}

grpc::ServerWriteReactor<v1::WatchWorkerResponse>* AgentServiceImpl::WatchWorker(
    grpc::CallbackServerContext* ctx, const v1::WatchWorkerRequest* req) {
  auto writer = QueuedWriter<v1::WatchWorkerResponse>::Create();
  auto caller = CallerOf(ctx);
  if (!caller.ok()) {
    writer->End(caller.status());
    return writer.get();
  }
  std::weak_ptr<QueuedWriter<v1::WatchWorkerResponse>> weak = writer;
  absl::Status queued =
      executor_->Submit([this, writer, weak, caller = *caller, id = req->worker_id()] {
        auto previous = std::make_shared<v1::WorkerState>(v1::WORKER_STATE_UNSPECIFIED);
        auto handle = spawner_->Watch(caller, id, [weak, previous](const v1::Worker& w) {
          if (auto writer = weak.lock()) {
            v1::WatchWorkerResponse r;
            *r.mutable_worker() = w;
            r.set_previous_state(*previous);
            *previous = w.state();
            writer->Push(std::move(r));
            if (Ended(w.state())) writer->End(absl::OkStatus());
          }
        });
        if (!handle.ok()) return writer->End(handle.status());
        writer->OnFinished([spawner = spawner_, id, h = *handle] { spawner->Unwatch(id, h); });
      });
  if (!queued.ok()) writer->End(queued);
  return writer.get();
}

grpc::ServerBidiReactor<v1::ConnectRequest, v1::ConnectResponse>* RunnerServiceImpl::Connect(
    grpc::CallbackServerContext* ctx) {
  auto reactor = std::make_shared<ConnectReactor>(ctx, spawner_, executor_);
  reactor->Begin(reactor);
  return reactor.get();
}

}  // namespace orchestrator::agents
