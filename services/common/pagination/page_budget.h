#pragma once

#include <google/protobuf/message_lite.h>

#include <cstddef>

namespace orchestrator {

// What one page of a List response may weigh: well under gRPC's 4 MiB
// message limit, so however large some owner's items are, every list still
// answers (the rest follows through next_page_token).
inline constexpr size_t kMaxPageBytes = 1 << 20;

// Fills a page up to a byte budget: Take(item) counts the item and says
// whether it still fits. The first item always fits (so a page always makes
// progress); stored items are bounded well under the budget.
class PageBudget final {
 public:
  explicit PageBudget(size_t max_bytes = kMaxPageBytes) : left_(max_bytes) {}

  bool Take(const google::protobuf::MessageLite& item) {
    // The item, its field tag and length prefix in the repeated field.
    const size_t bytes = item.ByteSizeLong() + 6;
    if (taken_ > 0 && bytes > left_) return false;
    left_ = bytes > left_ ? 0 : left_ - bytes;
    ++taken_;
    return true;
  }

 private:
  size_t left_;
  int taken_ = 0;
};

}  // namespace orchestrator
