#pragma once

#include <grpcpp/support/server_callback.h>

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/status/status.h"

namespace orchestrator {

// A server stream fed from other threads: Push queues a message and writes
// it when the previous write is done, End finishes the call once the queue
// is drained. It keeps itself alive (shared_from_this) until gRPC is done
// with it; `on_done` runs once then, off gRPC's thread of no concern to it.
//
// What waits for a client that does not read is bounded: past
// `max_queued_bytes` of queued messages the waiting ones are dropped and
// the call ends with RESOURCE_EXHAUSTED; what the stream's producer
// registered with OnFinished runs at once then (on a thread of its own,
// since Push may be called under the producer's locks), as if the client
// had left.
template <typename Response>
class QueuedWriter : public grpc::ServerWriteReactor<Response>,
                     public std::enable_shared_from_this<QueuedWriter<Response>> {
 public:
  static constexpr size_t kDefaultMaxQueuedBytes = size_t{8} << 20;  // 8 MiB

  static std::shared_ptr<QueuedWriter> Create(size_t max_queued_bytes = kDefaultMaxQueuedBytes) {
    auto w = std::shared_ptr<QueuedWriter>(new QueuedWriter(max_queued_bytes));
    w->self_ = w;
    return w;
  }

  void Push(Response r) {
    std::function<void()> overflowed;
    {
      absl::MutexLock lock(&mu_);
      if (done_ || ending_) return;
      const size_t bytes = r.ByteSizeLong();
      // One message always fits (a lone large one is not the client's fault).
      if (!queue_.empty() && queued_bytes_ + bytes > max_queued_bytes_) {
        overflowed = OverflowLocked();
      } else {
        queued_bytes_ += bytes;
        queue_.push_back(Entry{std::move(r), bytes});
        PumpLocked();
        return;
      }
    }
    if (overflowed) {
      // Off the caller's thread: it may hold the locks `overflowed` takes.
      std::thread([f = std::move(overflowed), keep = this->shared_from_this()] { f(); }).detach();
    }
  }

  void End(const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    if (done_ || ending_) return;
    ending_ = true;
    end_status_ = status;
    PumpLocked();
  }

  // Runs when the call is over, or the client stopped reading (at once if
  // either happened already).
  void OnFinished(std::function<void()> f) {
    bool now = false;
    {
      absl::MutexLock lock(&mu_);
      if (done_ || overflowed_) {
        now = true;
      } else {
        on_done_ = std::move(f);
      }
    }
    if (now) f();
  }

  // Bytes of messages waiting for the client (the one being written included).
  size_t queued_bytes() {
    absl::MutexLock lock(&mu_);
    return queued_bytes_;
  }

  bool done() {
    absl::MutexLock lock(&mu_);
    return done_;
  }

  // For a producer on a thread of its own that must not outrun the client:
  // waits until at most `max_bytes` are queued (true), the call ends or is
  // ending (false), or `timeout` passes (false).
  bool AwaitRoom(size_t max_bytes, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto room = [this, max_bytes]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return queued_bytes_ <= max_bytes || done_ || ending_ || finished_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&room), timeout);
    return queued_bytes_ <= max_bytes && !done_ && !ending_ && !finished_;
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      queue_.clear();
      queued_bytes_ = 0;
      if (!finished_) {
        finished_ = true;
        this->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
      }
      return;
    }
    queued_bytes_ -= queue_.front().bytes;
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
  struct Entry {
    Response response;
    size_t bytes;
  };

  explicit QueuedWriter(size_t max_queued_bytes) : max_queued_bytes_(max_queued_bytes) {}

  // The client is not reading: what waits is dropped (but the message being
  // written), the call ends after it; returns what is to run now.
  std::function<void()> OverflowLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const size_t waited = queued_bytes_;
    while (queue_.size() > (writing_ ? 1 : 0)) {
      queued_bytes_ -= queue_.back().bytes;
      queue_.pop_back();
    }
    ending_ = true;
    overflowed_ = true;
    end_status_ = absl::ResourceExhaustedError(
        absl::StrCat("the client is not reading; the stream ended with ", waited,
                     " bytes of messages waiting for it (at most ", max_queued_bytes_, ")"));
    PumpLocked();
    std::function<void()> f = std::move(on_done_);
    on_done_ = nullptr;  // runs once: not again in OnDone
    return f;
  }

  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_) return;
    if (!queue_.empty()) {
      writing_ = true;
      this->StartWrite(&queue_.front().response);
      return;
    }
    if (ending_) {
      finished_ = true;
      this->Finish(ToGrpcStatus(end_status_));
    }
  }

  const size_t max_queued_bytes_;
  absl::Mutex mu_;
  // The front of the queue is being written while writing_.
  std::deque<Entry> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool overflowed_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status end_status_ ABSL_GUARDED_BY(mu_);
  std::function<void()> on_done_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<QueuedWriter> self_;
};

}  // namespace orchestrator
