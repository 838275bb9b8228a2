#include "services/common/pagination/page_token.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace orchestrator {
namespace {

constexpr absl::string_view kVersion = "p1";

// FNV-1a: stable across processes and releases, unlike absl::Hash.
std::string Fingerprint(absl::string_view filters) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : filters) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return absl::StrCat(absl::Hex(h, absl::kZeroPad16));
}

void AppendField(std::string& out, absl::string_view field) {
  absl::StrAppend(&out, field.size(), ":", field);
}

absl::StatusOr<std::vector<std::string>> SplitFields(absl::string_view data) {
  std::vector<std::string> fields;
  while (!data.empty()) {
    size_t colon = data.find(':');
    size_t len = 0;
    if (colon == absl::string_view::npos || !absl::SimpleAtoi(data.substr(0, colon), &len) ||
        len > data.size() - colon - 1) {
      return absl::InvalidArgumentError("page_token is malformed");
    }
    fields.emplace_back(data.substr(colon + 1, len));
    data.remove_prefix(colon + 1 + len);
  }
  return fields;
}

}  // namespace

absl::StatusOr<PageRequest> ParsePageRequest(int32_t page_size, absl::string_view page_token,
                                             absl::string_view filters, int32_t default_size,
                                             int32_t max_size) {
  if (page_size < 0) return absl::InvalidArgumentError("page_size must not be negative");
  PageRequest request;
  request.page_size = page_size == 0 ? default_size : std::min(page_size, max_size);
  if (page_token.empty()) return request;

  std::string raw;
  if (!absl::WebSafeBase64Unescape(page_token, &raw)) {
    return absl::InvalidArgumentError("page_token is malformed");
  }
  auto fields = SplitFields(raw);
  if (!fields.ok()) return fields.status();
  if (fields->size() < 3 || (*fields)[0] != kVersion) {
    return absl::InvalidArgumentError("page_token is malformed");
  }
  if ((*fields)[1] != Fingerprint(filters)) {
    return absl::InvalidArgumentError(
        "page_token was issued for different filters; repeat the first request's filters");
  }
  request.after.assign(fields->begin() + 2, fields->end());
  return request;
}

std::string MakePageToken(absl::string_view filters, const std::vector<std::string>& last_keys) {
  std::string raw;
  AppendField(raw, kVersion);
  AppendField(raw, Fingerprint(filters));
  for (const auto& key : last_keys) AppendField(raw, key);
  return absl::WebSafeBase64Escape(raw);
}

}  // namespace orchestrator
