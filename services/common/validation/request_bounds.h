#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace google::protobuf {
class Descriptor;
class Message;
}  // namespace google::protobuf

namespace orchestrator {

// The contracts' one bounds table: every request field declares its limit
// once, as option (orchestrator.common.v1.bounds), and this checks a
// request against it before the domain runs:
//  - strings and bytes: max_bytes, and for strings the declared Text kind;
//  - repeated and map fields: max_items (each element checked as the field);
//  - integers: [min, max]; enums: a value the contract names;
//  - Duration and Timestamp: always well-formed (what protobuf's TimeUtil
//    would CHECK-fail on never reaches it), Durations within
//    [min_seconds, max_seconds];
//  - other well-known messages (Struct, Value, FieldMask, ...): max_bytes
//    serialized;
//  - our own messages: recursively, at most 32 levels deep.
// A violation is INVALID_ARGUMENT naming the field path
// ("project.display_name", "permissions[2]", "config.environment[\"K\"]")
// and never echoing the value.
absl::Status CheckRequestBounds(const google::protobuf::Message& request);

// For a client that produces what it sends (the runner reporting an agent's
// output): `message` clipped to the same declared bounds, so the mesh never
// has to refuse it. Strings are cut on a character boundary (with an
// ellipsis), made valid UTF-8, and stripped of what their text kind forbids;
// repeated fields lose their tail; an oversized message field is cleared.
void FitToBounds(google::protobuf::Message* message);

// The fields reachable from `request` that a request could carry unbounded
// (a string, bytes, repeated, map, Duration or well-known message field
// without a declaration), as "pkg.Message.field"; empty when the contract is
// complete.
std::vector<std::string> UnboundedFields(const google::protobuf::Descriptor* request);

// Text kinds, also for values that do not come from a request field.
// One line a person reads: no control characters, no bidi overrides.
bool IsHumanLine(absl::string_view text);
// As IsHumanLine, plus newline and tab.
bool IsHumanText(absl::string_view text);
// `text` made IsHumanText: what it refuses becomes a space (a byte that is
// no UTF-8, '?'). For quoting what a program wrote (a container's log).
std::string HumanTextOf(absl::string_view text);

// `text` cut to at most `max_bytes` (on a UTF-8 character boundary) with an
// ellipsis when cut: for echoing what a caller sent.
std::string Truncated(absl::string_view text, size_t max_bytes);

}  // namespace orchestrator
