#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace orchestrator {

// What changes made under an object's lock do outside it (store writes,
// outgoing calls, callbacks), applied after the lock is released, one at a
// time and in the order they were posted. Post under the object's lock, so
// that the order is the order of the changes; Settle once it is released.
//
// No thread of its own: whoever settles applies what is posted (or waits
// for the thread applying it), so a call returns once what it changed is
// done outside too.
class Outbox final {
 public:
  Outbox() = default;
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  void Post(std::function<void()> effect) ABSL_LOCKS_EXCLUDED(mu_);

  // Returns once everything posted before the call is applied: applies it,
  // or waits for the thread applying it. Called from inside an effect (an
  // effect calling back into its object), it returns at once: the effects
  // it would wait for come after the running one, and the outer Settle
  // applies them.
  void Settle() ABSL_LOCKS_EXCLUDED(mu_);

  // Makes this thread the one applying effects until it calls Release:
  // what is posted meanwhile waits (e.g. until the row a later write
  // updates exists). Release applies it.
  void Hold() ABSL_LOCKS_EXCLUDED(mu_);
  void Release() ABSL_LOCKS_EXCLUDED(mu_);

  // Nothing waits to be applied, nothing is being applied.
  bool Idle() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // With this thread as `applier_`: applies until nothing is left.
  void ApplyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;  // the queue only; never held while an effect runs
  std::deque<std::function<void()>> effects_ ABSL_GUARDED_BY(mu_);
  uint64_t posted_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t applied_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread::id applier_ ABSL_GUARDED_BY(mu_);  // the thread applying effects, if any
};

}  // namespace orchestrator
