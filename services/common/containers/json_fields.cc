#include "services/common/containers/json_fields.h"

#include <limits>

namespace orchestrator::containers {

nlohmann::json ParseJson(absl::string_view text) {
  return nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
}

const nlohmann::json* Field(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string StringField(const nlohmann::json& object, const char* key) {
  const nlohmann::json* field = Field(object, key);
  return field != nullptr && field->is_string() ? field->get<std::string>() : "";
}

int64_t IntField(const nlohmann::json& object, const char* key) {
  const nlohmann::json* field = Field(object, key);
  if (field == nullptr) return 0;
  if (field->is_number_integer()) return field->get<int64_t>();
  if (field->is_number_unsigned()) {
    const uint64_t value = field->get<uint64_t>();
    return value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
               ? std::numeric_limits<int64_t>::max()
               : static_cast<int64_t>(value);
  }
  return 0;
}

bool BoolField(const nlohmann::json& object, const char* key) {
  const nlohmann::json* field = Field(object, key);
  return field != nullptr && field->is_boolean() && field->get<bool>();
}

Labels LabelsField(const nlohmann::json& object, const char* key) {
  Labels labels;
  const nlohmann::json* field = Field(object, key);
  if (field == nullptr || !field->is_object()) return labels;
  for (const auto& [name, value] : field->items()) {
    if (value.is_string()) labels[name] = value.get<std::string>();
  }
  return labels;
}

std::optional<absl::Time> TimeField(const nlohmann::json& object, const char* key) {
  const std::string text = StringField(object, key);
  absl::Time time;
  std::string error;
  if (text.empty() || !absl::ParseTime(absl::RFC3339_full, text, &time, &error)) {
    return std::nullopt;
  }
  if (time <= absl::FromCivil(absl::CivilSecond(1, 1, 1, 0, 0, 0), absl::UTCTimeZone())) {
    return std::nullopt;
  }
  return time;
}

std::string DumpJson(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace orchestrator::containers
