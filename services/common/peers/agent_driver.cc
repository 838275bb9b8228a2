#include "services/common/peers/agent_driver.h"

#include <utility>

namespace orchestrator {

void Cancellation::Cancel() {
  // `cut` runs under mu_ so that Disarm (and the call's end) waits for it.
  absl::MutexLock lock(&mu_);
  if (cancelled_) return;
  cancelled_ = true;
  if (cut_) std::exchange(cut_, nullptr)();
}

bool Cancellation::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

bool Cancellation::Arm(std::function<void()> cut) {
  absl::MutexLock lock(&mu_);
  if (cancelled_) return false;
  cut_ = std::move(cut);
  return true;
}

void Cancellation::Disarm() {
  absl::MutexLock lock(&mu_);
  cut_ = nullptr;
}

}  // namespace orchestrator
