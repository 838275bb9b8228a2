#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace orchestrator {

// AIP-158 page tokens. A token is opaque to clients: it carries the sort
// keys of the last item returned and a fingerprint of the request's filters,
// so a token replayed with other filters is refused instead of silently
// skipping or repeating items.
struct PageRequest {
  int32_t page_size = 0;           // validated, never 0
  std::vector<std::string> after;  // empty on the first page
};

// Validates page_size (negative → INVALID_ARGUMENT; 0 → default; above max →
// max) and decodes page_token against the filters' fingerprint.
absl::StatusOr<PageRequest> ParsePageRequest(int32_t page_size, absl::string_view page_token,
                                             absl::string_view filters, int32_t default_size,
                                             int32_t max_size);

// Rows of one page plus the sort keys of the last row (for the next token).
template <typename T>
struct Page {
  std::vector<T> items;
  std::vector<std::string> last_keys;  // empty when there is no next page
};

// The token for the page that starts after the item with these sort keys.
std::string MakePageToken(absl::string_view filters, const std::vector<std::string>& last_keys);

}  // namespace orchestrator
