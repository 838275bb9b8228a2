#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace orchestrator::commands {

// How values look to people. Enums lose their type prefix and go lower case
// with dashes (JOB_STATE_RUNNING → running, AGENT_TYPE_CLAUDE_CODE →
// claude-code), which is also what flags accept; times are UTC with how long
// ago; durations read like "4m 10s".

std::string EnumLabel(const google::protobuf::EnumValueDescriptor* value);
absl::StatusOr<const google::protobuf::EnumValueDescriptor*> ParseEnumLabel(
    const google::protobuf::EnumDescriptor* type, const std::string& text);
// "running, succeeded, …": what ParseEnumLabel accepts.
std::string EnumLabels(const google::protobuf::EnumDescriptor* type);

std::string AgoText(absl::Time t, absl::Time now);   // "4m ago", "in 2h"
std::string TimeText(absl::Time t, absl::Time now);  // "2026-11-21 10:12:03 UTC (4m ago)"
std::string ClockText(absl::Time t);                 // "10:12:03"
std::string DurationText(absl::Duration d);          // "1h 5m", "3.2s", "120ms"
std::string CountText(int64_t n);                    // "850", "12.3k", "1.2M"

// One field of `message` as text: the whole field (repeated ones joined by
// ", "). `compact` is for table cells (times as "4m ago").
std::string FormatField(const google::protobuf::Message& message,
                        const google::protobuf::FieldDescriptor* field, absl::Time now,
                        bool compact);
// A message on one line: well-known types their own way (Timestamp, Duration,
// Struct as JSON, google.rpc.Status as "CODE: message"), others "k=v k=v".
std::string FormatMessage(const google::protobuf::Message& message, absl::Time now, bool compact);

// The value at a dotted path ("release.job_id"); "" when a part is unset.
std::string FormatPath(const google::protobuf::Message& message, const std::string& path,
                       absl::Time now, bool compact);

// The set fields of `message`, one "key: value" line each, sub-messages
// flattened as "parent.child"; `skip` names top-level fields left out.
std::vector<std::pair<std::string, std::string>> KeyValues(
    const google::protobuf::Message& message, absl::Time now,
    const std::vector<std::string>& skip = {});

// Aligned columns, two spaces apart, headers first; cells longer than
// `max_cell` characters are cut with "…".
std::string RenderTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows, size_t max_cell = 60);
std::string RenderKeyValues(const std::vector<std::pair<std::string, std::string>>& pairs);

}  // namespace orchestrator::commands
