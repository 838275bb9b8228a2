#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace orchestrator {

// A fixed pool of threads with a bounded queue. Callback reactors hand their
// blocking work (database, outgoing calls) here so gRPC's threads never
// block; a full queue is refused rather than grown, so overload surfaces as
// RESOURCE_EXHAUSTED instead of unbounded memory.
class BoundedExecutor final {
 public:
  BoundedExecutor(size_t threads, size_t max_queued);
  ~BoundedExecutor();  // Runs what is queued, then joins.

  BoundedExecutor(const BoundedExecutor&) = delete;
  BoundedExecutor& operator=(const BoundedExecutor&) = delete;

  // Queues `task`; RESOURCE_EXHAUSTED when the queue is full, UNAVAILABLE
  // after Shutdown().
  absl::Status Submit(std::function<void()> task);

  // Stops accepting work; queued tasks still run. Idempotent.
  void Shutdown();

 private:
  void Loop();

  const size_t max_queued_;
  absl::Mutex mu_;
  // Pending tasks and the stop flag.
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

using BoundedExecutorPtr = std::shared_ptr<BoundedExecutor>;

}  // namespace orchestrator
