#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace orchestrator {

// Structured key=value lines on stderr, UTC timestamps. INVALID_ARGUMENT for
// an unknown level (trace, debug, info, warn, error).
absl::Status InitLogging(absl::string_view level);

}  // namespace orchestrator
