#include "services/common/validation/fields.h"

#include "absl/strings/str_cat.h"

namespace orchestrator {

absl::Status InvalidField(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

absl::Status RequireNonEmpty(absl::string_view field, absl::string_view value) {
  return value.empty() ? InvalidField(field, "is required") : absl::OkStatus();
}

absl::Status CheckText(absl::string_view field, absl::string_view value, size_t max_bytes) {
  if (value.size() > max_bytes) {
    return InvalidField(
        field, absl::StrCat("is ", value.size(), " bytes; at most ", max_bytes, " are allowed"));
  }
  for (unsigned char c : value) {
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
      return InvalidField(field, "must not contain control characters");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckToken(absl::string_view field, absl::string_view value) {
  if (value.size() > 128) return InvalidField(field, "is longer than 128 characters");
  for (unsigned char c : value) {
    if (c < 0x21 || c > 0x7e) {
      return InvalidField(field, "must be printable ASCII without spaces");
    }
  }
  return absl::OkStatus();
}

}  // namespace orchestrator
