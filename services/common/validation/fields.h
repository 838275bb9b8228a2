#pragma once

#include <cstddef>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace orchestrator {

// INVALID_ARGUMENT "<field>: <problem>", the shape every component uses so a
// client always learns which field to fix.
absl::Status InvalidField(absl::string_view field, absl::string_view problem);

absl::Status RequireNonEmpty(absl::string_view field, absl::string_view value);
// Length in bytes; also rejects control characters other than \n and \t.
absl::Status CheckText(absl::string_view field, absl::string_view value, size_t max_bytes);
// Resource ids and request ids: printable ASCII without spaces, at most 128.
absl::Status CheckToken(absl::string_view field, absl::string_view value);

}  // namespace orchestrator
