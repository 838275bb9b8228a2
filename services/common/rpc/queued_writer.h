#pragma once

#include <grpcpp/support/server_callback.h>

#include <deque>
#include <functional>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "services/common/status/status.h"

namespace orchestrator {

// A server stream fed from other threads: Push queues a message and writes
// it when the previous write is done, End finishes the call once the queue
// is drained. It keeps itself alive (shared_from_this) until gRPC is done
// with it; `on_done` runs once then, off gRPC's thread of no concern to it.
template <typename Response>
class QueuedWriter : public grpc::ServerWriteReactor<Response>,
                     public std::enable_shared_from_this<QueuedWriter<Response>> {
 public:
  static std::shared_ptr<QueuedWriter> Create() {
    auto w = std::shared_ptr<QueuedWriter>(new QueuedWriter());
    w->self_ = w;
    return w;
  }

  void Push(Response r) {
    absl::MutexLock lock(&mu_);
    if (done_ || ending_) return;
    queue_.push_back(std::move(r));
    PumpLocked();
  }

  void End(const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    if (done_ || ending_) return;
    ending_ = true;
    end_status_ = status;
    PumpLocked();
  }

  // Runs when the call is over (at once if it already is).
  void OnFinished(std::function<void()> f) {
    bool now = false;
    {
      absl::MutexLock lock(&mu_);
      if (done_) {
        now = true;
      } else {
        on_done_ = std::move(f);
      }
    }
    if (now) f();
  }

  bool done() {
    absl::MutexLock lock(&mu_);
    return done_;
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      queue_.clear();
      if (!finished_) {
        finished_ = true;
        this->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
      }
      return;
    }
    queue_.pop_front();
    PumpLocked();
  }

  void OnCancel() override { End(absl::CancelledError("client cancelled")); }

  void OnDone() override {
    std::function<void()> f;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      f = std::move(on_done_);
    }
    if (f) f();
    self_.reset();
  }

 private:
  QueuedWriter() = default;

  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_) return;
    if (!queue_.empty()) {
      writing_ = true;
      this->StartWrite(&queue_.front());
      return;
    }
    if (ending_) {
      finished_ = true;
      this->Finish(ToGrpcStatus(end_status_));
    }
  }

  absl::Mutex mu_;
  // The front of the queue is being written while writing_.
  std::deque<Response> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status end_status_ ABSL_GUARDED_BY(mu_);
  std::function<void()> on_done_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<QueuedWriter> self_;
};

}  // namespace orchestrator
