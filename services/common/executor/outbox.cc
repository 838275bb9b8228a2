#include "services/common/executor/outbox.h"

#include <utility>

namespace orchestrator {

void Outbox::Post(std::function<void()> effect) {
  absl::MutexLock lock(&mu_);
  effects_.push_back(std::move(effect));
  ++posted_;
}

void Outbox::Settle() {
  absl::MutexLock lock(&mu_);
  const uint64_t target = posted_;
  const std::thread::id me = std::this_thread::get_id();
  auto applied_or_free = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return applied_ >= target || applier_ == std::thread::id();
  };
  while (applied_ < target && applier_ != me) {
    if (applier_ != std::thread::id()) {
      mu_.Await(absl::Condition(&applied_or_free));
      continue;
    }
    applier_ = me;
    ApplyLocked();
  }
}

void Outbox::Hold() {
  absl::MutexLock lock(&mu_);
  auto free = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return applier_ == std::thread::id(); };
  mu_.Await(absl::Condition(&free));
  applier_ = std::this_thread::get_id();
}

void Outbox::Release() {
  absl::MutexLock lock(&mu_);
  ApplyLocked();
}

bool Outbox::Idle() {
  absl::MutexLock lock(&mu_);
  return effects_.empty() && applier_ == std::thread::id();
}

void Outbox::ApplyLocked() {
  while (!effects_.empty()) {
    std::function<void()> effect = std::move(effects_.front());
    effects_.pop_front();
    mu_.Unlock();
    effect();
    mu_.Lock();
    ++applied_;
  }
  applier_ = std::thread::id();
}

}  // namespace orchestrator
