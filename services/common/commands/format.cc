#include "services/common/commands/format.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace orchestrator::commands {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// "JobState" → "JOB_STATE_": the prefix buf's lint gives every value.
std::string EnumPrefix(const EnumDescriptor* type) {
  std::string out;
  const std::string& name = type->name();
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (i > 0 && std::isupper(static_cast<unsigned char>(c)) &&
        !std::isupper(static_cast<unsigned char>(name[i - 1]))) {
      out += '_';
    }
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out + "_";
}

bool Is(const Descriptor* d, const char* full_name) {
  return d != nullptr && d->full_name() == full_name;
}

int64_t IntField(const Message& m, const char* name) {
  const FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(name);
  return f->cpp_type() == FieldDescriptor::CPPTYPE_INT64 ? m.GetReflection()->GetInt64(m, f)
                                                         : m.GetReflection()->GetInt32(m, f);
}

absl::Time TimeOf(const Message& timestamp) {
  return absl::FromUnixSeconds(IntField(timestamp, "seconds")) +
         absl::Nanoseconds(IntField(timestamp, "nanos"));
}

absl::Duration DurationOf(const Message& duration) {
  return absl::Seconds(IntField(duration, "seconds")) +
         absl::Nanoseconds(IntField(duration, "nanos"));
}

// Display width of UTF-8 text: code points, not bytes.
size_t Width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string Cut(const std::string& s, size_t max) {
  if (Width(s) <= max) return s;
  std::string out;
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) != 0x80 && ++n > max - 1) break;
    out += s[i];
  }
  return out + "…";
}

std::string OneLine(std::string s) {
  absl::StrReplaceAll({{"\r\n", " "}, {"\n", " "}, {"\t", " "}}, &s);
  return s;
}

std::string FormatSingle(const Message& message, const FieldDescriptor* field, int index,
                         absl::Time now, bool compact) {
  const Reflection* r = message.GetReflection();
  const bool repeated = field->is_repeated();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      return repeated ? r->GetRepeatedString(message, field, index) : r->GetString(message, field);
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(repeated ? r->GetRepeatedInt32(message, field, index)
                                   : r->GetInt32(message, field));
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(repeated ? r->GetRepeatedInt64(message, field, index)
                                   : r->GetInt64(message, field));
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(repeated ? r->GetRepeatedUInt32(message, field, index)
                                   : r->GetUInt32(message, field));
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(repeated ? r->GetRepeatedUInt64(message, field, index)
                                   : r->GetUInt64(message, field));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return absl::StrCat(repeated ? r->GetRepeatedDouble(message, field, index)
                                   : r->GetDouble(message, field));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return absl::StrCat(repeated ? r->GetRepeatedFloat(message, field, index)
                                   : r->GetFloat(message, field));
    case FieldDescriptor::CPPTYPE_BOOL:
      return (repeated ? r->GetRepeatedBool(message, field, index) : r->GetBool(message, field))
                 ? "yes"
                 : "no";
    case FieldDescriptor::CPPTYPE_ENUM:
      return EnumLabel(repeated ? r->GetRepeatedEnum(message, field, index)
                                : r->GetEnum(message, field));
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return FormatMessage(
          repeated ? r->GetRepeatedMessage(message, field, index) : r->GetMessage(message, field),
          now, compact);
  }
  return "";
}

bool IsSet(const Message& message, const FieldDescriptor* field) {
  const Reflection* r = message.GetReflection();
  return field->is_repeated() ? r->FieldSize(message, field) > 0 : r->HasField(message, field);
}

// Messages shown as one value rather than flattened into keys.
bool IsLeafMessage(const Descriptor* d) {
  return Is(d, "google.protobuf.Timestamp") || Is(d, "google.protobuf.Duration") ||
         Is(d, "google.protobuf.Struct") || Is(d, "google.protobuf.Value") ||
         Is(d, "google.protobuf.FieldMask") || Is(d, "google.rpc.Status");
}

void Flatten(const Message& message, const std::string& prefix, absl::Time now,
             const std::vector<std::string>& skip,
             std::vector<std::pair<std::string, std::string>>* out) {
  const Descriptor* d = message.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (!IsSet(message, f)) continue;
    if (prefix.empty() && std::find(skip.begin(), skip.end(), f->name()) != skip.end()) continue;
    const std::string key = prefix.empty() ? f->name() : absl::StrCat(prefix, ".", f->name());
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !f->is_repeated() &&
        !IsLeafMessage(f->message_type())) {
      Flatten(message.GetReflection()->GetMessage(message, f), key, now, {}, out);
      continue;
    }
    if (f->is_repeated() && f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      const int n = message.GetReflection()->FieldSize(message, f);
      for (int k = 0; k < n; ++k) {
        out->emplace_back(absl::StrCat(key, "[", k, "]"), FormatSingle(message, f, k, now, false));
      }
      continue;
    }
    out->emplace_back(key, FormatField(message, f, now, false));
  }
}

}  // namespace

std::string EnumLabel(const EnumValueDescriptor* value) {
  std::string name = value->name();
  const std::string prefix = EnumPrefix(value->type());
  if (absl::StartsWith(name, prefix)) name = name.substr(prefix.size());
  absl::AsciiStrToLower(&name);
  absl::StrReplaceAll({{"_", "-"}}, &name);
  return name;
}

absl::StatusOr<const EnumValueDescriptor*> ParseEnumLabel(const EnumDescriptor* type,
                                                          const std::string& text) {
  std::string want = absl::AsciiStrToUpper(text);
  absl::StrReplaceAll({{"-", "_"}}, &want);
  for (const std::string& candidate : {want, EnumPrefix(type) + want}) {
    const EnumValueDescriptor* v = type->FindValueByName(candidate);
    if (v != nullptr && v->number() != 0) return v;
  }
  return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not one of: ", EnumLabels(type)));
}

std::string EnumLabels(const EnumDescriptor* type) {
  std::vector<std::string> labels;
  for (int i = 0; i < type->value_count(); ++i) {
    if (type->value(i)->number() != 0) labels.push_back(EnumLabel(type->value(i)));
  }
  return absl::StrJoin(labels, ", ");
}

std::string AgoText(absl::Time t, absl::Time now) {
  const absl::Duration d = now - t;
  const absl::Duration a = absl::AbsDuration(d);
  if (a < absl::Seconds(1)) return "just now";
  std::string amount;
  if (a < absl::Minutes(1)) {
    amount = absl::StrCat(absl::ToInt64Seconds(a), "s");
  } else if (a < absl::Hours(1)) {
    amount = absl::StrCat(absl::ToInt64Minutes(a), "m");
  } else if (a < absl::Hours(48)) {
    amount = absl::StrCat(absl::ToInt64Hours(a), "h");
  } else {
    amount = absl::StrCat(absl::ToInt64Hours(a) / 24, "d");
  }
  return d > absl::ZeroDuration() ? amount + " ago" : "in " + amount;
}

std::string TimeText(absl::Time t, absl::Time now) {
  return absl::StrCat(absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", t, absl::UTCTimeZone()), " (",
                      AgoText(t, now), ")");
}

std::string ClockText(absl::Time t) { return absl::FormatTime("%H:%M:%S", t, absl::UTCTimeZone()); }

std::string DurationText(absl::Duration d) {
  if (d < absl::ZeroDuration()) return "-" + DurationText(-d);
  if (d < absl::Seconds(1)) return absl::StrCat(absl::ToInt64Milliseconds(d), "ms");
  if (d < absl::Minutes(1)) return absl::StrFormat("%.1fs", absl::ToDoubleSeconds(d));
  const int64_t s = absl::ToInt64Seconds(d);
  if (d < absl::Hours(1)) return absl::StrCat(s / 60, "m ", s % 60, "s");
  if (d < absl::Hours(48)) return absl::StrCat(s / 3600, "h ", (s % 3600) / 60, "m");
  return absl::StrCat(s / 86400, "d ", (s % 86400) / 3600, "h");
}

std::string CountText(int64_t n) {
  if (n < 0) return "-" + CountText(-n);
  if (n < 1000) return absl::StrCat(n);
  if (n < 1000 * 1000) return absl::StrFormat("%.1fk", n / 1e3);
  if (n < 1000 * 1000 * 1000) return absl::StrFormat("%.1fM", n / 1e6);
  return absl::StrFormat("%.1fG", n / 1e9);
}

std::string FormatMessage(const Message& message, absl::Time now, bool compact) {
  const Descriptor* d = message.GetDescriptor();
  if (Is(d, "google.protobuf.Timestamp")) {
    const absl::Time t = TimeOf(message);
    return compact ? AgoText(t, now) : TimeText(t, now);
  }
  if (Is(d, "google.protobuf.Duration")) return DurationText(DurationOf(message));
  if (Is(d, "google.rpc.Status")) {
    const auto code = static_cast<absl::StatusCode>(IntField(message, "code"));
    const std::string& text =
        message.GetReflection()->GetString(message, d->FindFieldByName("message"));
    return text.empty() ? absl::StatusCodeToString(code)
                        : absl::StrCat(absl::StatusCodeToString(code), ": ", text);
  }
  if (Is(d, "google.protobuf.Struct") || Is(d, "google.protobuf.Value") ||
      Is(d, "google.protobuf.FieldMask")) {
    std::string json;
    (void)google::protobuf::util::MessageToJsonString(message, &json);
    return json;
  }
  std::vector<std::string> parts;
  std::vector<std::pair<std::string, std::string>> pairs;
  Flatten(message, "", now, {}, &pairs);
  for (auto& [k, v] : pairs) parts.push_back(absl::StrCat(k, "=", OneLine(v)));
  return absl::StrJoin(parts, " ");
}

std::string FormatField(const Message& message, const FieldDescriptor* field, absl::Time now,
                        bool compact) {
  if (!field->is_repeated()) return FormatSingle(message, field, 0, now, compact);
  std::vector<std::string> parts;
  const int n = message.GetReflection()->FieldSize(message, field);
  for (int i = 0; i < n; ++i) parts.push_back(FormatSingle(message, field, i, now, compact));
  return absl::StrJoin(parts, ", ");
}

std::string FormatPath(const Message& message, const std::string& path, absl::Time now,
                       bool compact) {
  const Message* m = &message;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? dot : dot - start);
    const FieldDescriptor* f = m->GetDescriptor()->FindFieldByName(part);
    if (f == nullptr || !IsSet(*m, f)) return "";
    if (dot == std::string::npos) return FormatField(*m, f, now, compact);
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || f->is_repeated()) return "";
    m = &m->GetReflection()->GetMessage(*m, f);
    start = dot + 1;
  }
}

std::vector<std::pair<std::string, std::string>> KeyValues(const Message& message, absl::Time now,
                                                           const std::vector<std::string>& skip) {
  std::vector<std::pair<std::string, std::string>> out;
  Flatten(message, "", now, skip, &out);
  return out;
}

std::string RenderTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows, size_t max_cell) {
  std::vector<size_t> widths(headers.size(), 0);
  std::vector<std::vector<std::string>> cells;
  cells.push_back(headers);
  for (const auto& row : rows) {
    std::vector<std::string> cut;
    for (const auto& c : row) cut.push_back(Cut(OneLine(c), max_cell));
    cells.push_back(std::move(cut));
  }
  for (const auto& row : cells) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], Width(row[i]));
    }
  }
  std::string out;
  for (const auto& row : cells) {
    std::string line;
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - Width(row[i]) + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::string RenderKeyValues(const std::vector<std::pair<std::string, std::string>>& pairs) {
  size_t width = 0;
  for (const auto& [k, v] : pairs) width = std::max(width, Width(k));
  std::string out;
  for (const auto& [k, v] : pairs) {
    out += k + ":" + std::string(width - Width(k) + 2, ' ') + v + "\n";
  }
  return out;
}

}  // namespace orchestrator::commands
