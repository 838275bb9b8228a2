#pragma once

#include <google/protobuf/message.h>

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace orchestrator::cli {

// Sets the field at `path` ("project.name") of `message` from text as a
// person types it on a command line: numbers, yes/no, enum labels as
// printed (running, claude-code), times as RFC 3339 or as an age ("10m":
// ten minutes ago), durations ("90s", "1h30m", "2d"), JSON for Struct,
// comma-separated lists for repeated fields and field masks. The error says
// what was expected, for the caller to prefix with the flag's name. With
// `split_lists` false a repeated field takes `text` as one item (a phrase
// with commas).
absl::Status SetFromText(google::protobuf::Message* message, const std::string& path,
                         const std::string& text, absl::Time now, bool split_lists = true);

// Parses "90s", "1h30m", "2d".
bool ParseHumanDuration(const std::string& text, absl::Duration* out);

}  // namespace orchestrator::cli
