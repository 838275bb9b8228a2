#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "services/common/containers/container_engine.h"

namespace orchestrator::containers {

// Checks of what callers hand the engine, each INVALID_ARGUMENT naming
// `field` and the value (escaped, cut short); and the escaping of what goes
// into a URL.

// A container's name: a letter or digit, then letters, digits, '_', '.'
// or '-'; at most 128 bytes.
absl::Status ValidateContainerName(absl::string_view field, absl::string_view name);
// A container's name or id (ids are hex, so the same rule).
absl::Status ValidateContainerRef(absl::string_view field, absl::string_view container);
// An image reference ("[host[:port]/]path[:tag][@digest]", the path in
// lower case) or an image id ("sha256:<hex>" or hex).
absl::Status ValidateImageRef(absl::string_view field, absl::string_view image);
// At most 64 labels; keys of a letter or digit then letters, digits, '.',
// '_', '-' or '/' (at most 128 bytes); values of UTF-8 without NUL (at
// most 4 KiB).
absl::Status ValidateLabels(absl::string_view field, const Labels& labels);
absl::Status ValidateLabelMatches(absl::string_view field, const std::vector<LabelMatch>& labels);
// At most 256 "KEY=VALUE" (KEY as a shell variable's name), 32 KiB each,
// UTF-8 without NUL.
absl::Status ValidateEnv(absl::string_view field, const std::vector<std::string>& env);
// Names as ValidateEnv's keys, values as its values.
absl::Status ValidateBuildArgs(absl::string_view field,
                               const std::map<std::string, std::string>& args);
// A relative path that stays below where it starts (no "..", not absolute).
absl::Status ValidateRelativePath(absl::string_view field, absl::string_view path);

bool IsUtf8(absl::string_view text);

// Every byte but the unreserved ones (RFC 3986: letters, digits, "-._~")
// percent-encoded: for a query value.
std::string QueryEscape(absl::string_view value);
// As QueryEscape, also keeping '/', ':' and '@': for a path of an image
// reference or a container's name.
std::string PathEscape(absl::string_view value);

// The `filters` query value for `labels`: {"label":["key=value","key"]}.
std::string LabelFilters(const std::vector<LabelMatch>& labels);

}  // namespace orchestrator::containers
