#pragma once

#include <functional>
#include <memory>
#include <utility>

#include "absl/base/call_once.h"

namespace orchestrator {

// A peer's stub, made at the first call (an in-process channel exists only
// once the server serves).
template <typename Service>
class LazyStub {
 public:
  using StubPtr = std::unique_ptr<typename Service::StubInterface>;
  explicit LazyStub(std::function<StubPtr()> make) : make_(std::move(make)) {}
  typename Service::StubInterface& operator*() {
    absl::call_once(once_, [this] { stub_ = make_(); });
    return *stub_;
  }

 private:
  std::function<StubPtr()> make_;
  absl::once_flag once_;
  StubPtr stub_;  // set once, under once_
};

}  // namespace orchestrator
