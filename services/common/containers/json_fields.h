#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "services/common/containers/container_engine.h"

namespace orchestrator::containers {

// Reading the engine's JSON without exceptions: a field of the wrong type
// or absent reads as empty.

// `text` parsed; a discarded value (is_discarded()) when it is not JSON.
nlohmann::json ParseJson(absl::string_view text);

// The field `key` of `object`; null when `object` is no object or has none.
const nlohmann::json* Field(const nlohmann::json& object, const char* key);
std::string StringField(const nlohmann::json& object, const char* key);
int64_t IntField(const nlohmann::json& object, const char* key);
bool BoolField(const nlohmann::json& object, const char* key);
// An object of strings (Labels); the other members left out.
Labels LabelsField(const nlohmann::json& object, const char* key);
// An RFC 3339 time; none for Go's zero time ("0001-01-01T00:00:00Z"),
// which the engine writes for "never".
std::optional<absl::Time> TimeField(const nlohmann::json& object, const char* key);

// `value` as JSON text (invalid UTF-8 replaced: callers validate first).
std::string DumpJson(const nlohmann::json& value);

}  // namespace orchestrator::containers
