#include "services/common/validation/request_bounds.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "orchestrator/common/v1/options.pb.h"
#include "services/common/validation/fields.h"

namespace orchestrator {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

constexpr int kMaxDepth = 32;
constexpr int64_t kMaxDurationSeconds = 315576000000;   // protobuf's own range
constexpr int64_t kMinTimestampSeconds = -62135596800;  // 0001-01-01T00:00:00Z
constexpr int64_t kMaxTimestampSeconds = 253402300799;  // 9999-12-31T23:59:59Z

bool IsWellKnown(const Descriptor* d) {
  return absl::StartsWith(d->full_name(), "google.protobuf.");
}
bool IsDuration(const Descriptor* d) { return d->full_name() == "google.protobuf.Duration"; }
bool IsTimestamp(const Descriptor* d) { return d->full_name() == "google.protobuf.Timestamp"; }

// The next code point of `s` at `*i` (advancing it); -1 for a malformed
// sequence.
int32_t NextCodePoint(absl::string_view s, size_t* i) {
  const auto c = static_cast<unsigned char>(s[(*i)++]);
  if (c < 0x80) return c;
  int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : -1;
  if (extra < 0 || *i + extra > s.size()) return -1;
  int32_t cp = c & (0x3f >> extra);
  for (int k = 0; k < extra; ++k) {
    const auto next = static_cast<unsigned char>(s[(*i)++]);
    if ((next & 0xc0) != 0x80) return -1;
    cp = (cp << 6) | (next & 0x3f);
  }
  return cp;
}

// Embeddings, overrides and isolates, which reorder what follows them (the
// marks U+200E, U+200F and U+061C only nudge neutral characters: allowed).
bool IsBidiControl(int32_t cp) {
  return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

// A code point human text may not hold: controls (line breaks, tabs and
// carriage returns are allowed in `multiline` text), line and paragraph
// separators, and bidi controls.
bool Refused(int32_t cp, bool multiline) {
  if (multiline && (cp == '\n' || cp == '\t' || cp == '\r')) return false;
  return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
         IsBidiControl(cp);
}

bool IsHuman(absl::string_view text, bool multiline) {
  size_t i = 0;
  while (i < text.size()) {
    const int32_t cp = NextCodePoint(text, &i);
    if (cp < 0 || Refused(cp, multiline)) return false;
  }
  return true;
}

// `text` with what IsHuman refuses replaced: a character by a space, a byte
// that is no UTF-8 by '?'.
std::string AsHuman(absl::string_view text, bool multiline) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const size_t start = i;
    const int32_t cp = NextCodePoint(text, &i);
    if (cp < 0) {
      out += '?';
      i = start + 1;
      continue;
    }
    if (!Refused(cp, multiline)) {
      out.append(text.data() + start, i - start);
    } else {
      out += ' ';
    }
  }
  return out;
}

bool IsToken(absl::string_view text) {
  for (unsigned char c : text) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

class BoundsChecker {
 public:
  absl::Status Check(const Message& message, const std::string& path, int depth) {
    if (depth > kMaxDepth) return InvalidField(path, "is nested too deeply");
    const Reflection* r = message.GetReflection();
    std::vector<const FieldDescriptor*> fields;
    r->ListFields(message, &fields);
    for (const FieldDescriptor* f : fields) {
      const std::string name = path.empty() ? f->name() : absl::StrCat(path, ".", f->name());
      const auto& bounds = f->options().GetExtension(common::v1::bounds);
      if (f->is_repeated()) {
        const int n = r->FieldSize(message, f);
        if (bounds.max_items() > 0 && static_cast<uint32_t>(n) > bounds.max_items()) {
          return InvalidField(name, absl::StrCat("has ", n, " entries; at most ",
                                                 bounds.max_items(), " are allowed"));
        }
        for (int i = 0; i < n; ++i) {
          if (auto s = CheckElement(message, f, i, name, bounds, depth); !s.ok()) return s;
        }
      } else {
        if (auto s = CheckElement(message, f, -1, name, bounds, depth); !s.ok()) return s;
      }
    }
    return absl::OkStatus();
  }

 private:
  // One value of `f` (element `index` of a repeated field, or -1).
  absl::Status CheckElement(const Message& m, const FieldDescriptor* f, int index,
                            const std::string& name, const common::v1::Bounds& bounds, int depth) {
    const Reflection* r = m.GetReflection();
    const bool repeated = index >= 0;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string scratch;
        const std::string& value = repeated ? r->GetRepeatedStringReference(m, f, index, &scratch)
                                            : r->GetStringReference(m, f, &scratch);
        return CheckString(value, f->type() == FieldDescriptor::TYPE_BYTES,
                           repeated ? absl::StrCat(name, "[", index, "]") : name, bounds);
      }
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_INT64:
      case FieldDescriptor::CPPTYPE_UINT32:
      case FieldDescriptor::CPPTYPE_UINT64: {
        if (bounds.min() >= bounds.max()) return absl::OkStatus();
        const int64_t v = IntegerOf(m, f, index);
        if (v < bounds.min() || v > bounds.max()) {
          return InvalidField(
              repeated ? absl::StrCat(name, "[", index, "]") : name,
              absl::StrCat("must be between ", bounds.min(), " and ", bounds.max()));
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        const int v = repeated ? r->GetRepeatedEnumValue(m, f, index) : r->GetEnumValue(m, f);
        if (f->enum_type()->FindValueByNumber(v) == nullptr) {
          return InvalidField(repeated ? absl::StrCat(name, "[", index, "]") : name,
                              absl::StrCat(v, " is not a value of ", f->enum_type()->name()));
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_MESSAGE: {
        const Message& value = repeated ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f);
        if (f->is_map()) return CheckMapEntry(value, name, bounds, depth);
        const std::string element = repeated ? absl::StrCat(name, "[", index, "]") : name;
        return CheckMessage(value, element, bounds, depth);
      }
      default:  // bool, float, double: any value is one
        return absl::OkStatus();
    }
  }

  static int64_t IntegerOf(const Message& m, const FieldDescriptor* f, int index) {
    const Reflection* r = m.GetReflection();
    const bool rep = index >= 0;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        return rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f);
      case FieldDescriptor::CPPTYPE_INT64:
        return rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f);
      case FieldDescriptor::CPPTYPE_UINT32:
        return rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f);
      default: {  // uint64, saturated
        const uint64_t u = rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f);
        return u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(u);
      }
    }
  }

  static absl::Status CheckString(const std::string& value, bool bytes, const std::string& name,
                                  const common::v1::Bounds& bounds) {
    if (bounds.max_bytes() > 0 && value.size() > bounds.max_bytes()) {
      return InvalidField(name, absl::StrCat("is ", value.size(), " bytes; at most ",
                                             bounds.max_bytes(), " are allowed"));
    }
    if (bytes) return absl::OkStatus();
    switch (bounds.text()) {
      case common::v1::TEXT_LINE:
        if (!IsHumanLine(value)) {
          return InvalidField(
              name,
              "must be one line of text, without control characters or bidirectional "
              "overrides");
        }
        break;
      case common::v1::TEXT_MULTILINE:
        if (!IsHumanText(value)) {
          return InvalidField(name,
                              "must be text without control characters (other than newline, "
                              "carriage return and tab) or bidirectional overrides");
        }
        break;
      case common::v1::TEXT_TOKEN:
        if (!IsToken(value)) return InvalidField(name, "must be printable ASCII without spaces");
        break;
      default:
        break;
    }
    return absl::OkStatus();
  }

  absl::Status CheckMapEntry(const Message& entry, const std::string& name,
                             const common::v1::Bounds& bounds, int depth) {
    const Descriptor* d = entry.GetDescriptor();
    const Reflection* r = entry.GetReflection();
    const FieldDescriptor* key = d->map_key();
    const FieldDescriptor* value = d->map_value();
    std::string key_text;
    if (key->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      std::string scratch;
      const std::string& k = r->GetStringReference(entry, key, &scratch);
      if (auto s = CheckString(k, false, absl::StrCat(name, " key"), bounds); !s.ok()) return s;
      key_text = absl::StrCat("\"", Truncated(k, 40), "\"");
    } else {
      key_text = "…";
    }
    const std::string element = absl::StrCat(name, "[", key_text, "]");
    if (value->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      std::string scratch;
      return CheckString(r->GetStringReference(entry, value, &scratch),
                         value->type() == FieldDescriptor::TYPE_BYTES, element, bounds);
    }
    if (value->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      return CheckMessage(r->GetMessage(entry, value), element, bounds, depth);
    }
    return absl::OkStatus();
  }

  absl::Status CheckMessage(const Message& value, const std::string& name,
                            const common::v1::Bounds& bounds, int depth) {
    const Descriptor* d = value.GetDescriptor();
    if (IsDuration(d) || IsTimestamp(d)) {
      const Reflection* r = value.GetReflection();
      const int64_t seconds = r->GetInt64(value, d->field(0));
      const int32_t nanos = r->GetInt32(value, d->field(1));
      if (IsTimestamp(d)) {
        if (seconds < kMinTimestampSeconds || seconds > kMaxTimestampSeconds || nanos < 0 ||
            nanos > 999999999) {
          return InvalidField(name, "is not a valid timestamp (years 1 to 9999)");
        }
        return absl::OkStatus();
      }
      if (seconds < -kMaxDurationSeconds || seconds > kMaxDurationSeconds || nanos < -999999999 ||
          nanos > 999999999 || (seconds > 0 && nanos < 0) || (seconds < 0 && nanos > 0)) {
        return InvalidField(name,
                            "is not a valid duration (seconds and nanos of one sign, nanos "
                            "within a second)");
      }
      if (bounds.min_seconds() < bounds.max_seconds()) {
        const bool below =
            seconds < bounds.min_seconds() || (seconds == bounds.min_seconds() && nanos < 0);
        const bool above =
            seconds > bounds.max_seconds() || (seconds == bounds.max_seconds() && nanos > 0);
        if (below || above) {
          return InvalidField(name, absl::StrCat("must be between ", bounds.min_seconds(), "s and ",
                                                 bounds.max_seconds(), "s"));
        }
      }
      return absl::OkStatus();
    }
    if (bounds.max_bytes() > 0) {
      const size_t size = value.ByteSizeLong();
      if (size > bounds.max_bytes()) {
        return InvalidField(name, absl::StrCat("is ", size, " bytes encoded; at most ",
                                               bounds.max_bytes(), " are allowed"));
      }
    }
    if (IsWellKnown(d)) return absl::OkStatus();
    return Check(value, name, depth + 1);
  }
};

// `text` as valid UTF-8 holding only what `kind` allows (U+FFFD for the rest;
// '_' in tokens).
std::string Cleaned(absl::string_view text, common::v1::Text kind) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const size_t start = i;
    const int32_t cp = NextCodePoint(text, &i);
    bool allowed = cp >= 0;
    if (allowed && kind == common::v1::TEXT_TOKEN) allowed = cp >= 0x21 && cp <= 0x7e;
    if (allowed && (kind == common::v1::TEXT_LINE || kind == common::v1::TEXT_MULTILINE)) {
      allowed = IsHuman(text.substr(start, i - start), kind == common::v1::TEXT_MULTILINE);
    }
    if (allowed) {
      out.append(text.data() + start, i - start);
    } else {
      out.append(kind == common::v1::TEXT_TOKEN ? "_" : "\xEF\xBF\xBD");
      if (cp < 0) i = start + 1;  // resynchronise after a malformed byte
    }
  }
  return out;
}

void Fit(google::protobuf::Message* m, int depth) {
  if (depth > kMaxDepth) return;
  const Reflection* r = m->GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(*m, &fields);
  for (const FieldDescriptor* f : fields) {
    const auto& b = f->options().GetExtension(common::v1::bounds);
    const int n = f->is_repeated() ? r->FieldSize(*m, f) : 1;
    if (f->is_repeated() && b.max_items() > 0 && static_cast<uint32_t>(n) > b.max_items()) {
      for (int extra = n - static_cast<int>(b.max_items()); extra > 0; --extra) {
        r->RemoveLast(m, f);
      }
    }
    const int kept = f->is_repeated() ? r->FieldSize(*m, f) : 1;
    for (int i = 0; i < kept; ++i) {
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING &&
          f->type() == FieldDescriptor::TYPE_STRING) {
        std::string value = f->is_repeated() ? r->GetRepeatedString(*m, f, i) : r->GetString(*m, f);
        std::string fitted = Cleaned(value, b.text());
        if (b.max_bytes() > 3 && fitted.size() > b.max_bytes()) {
          fitted = Truncated(fitted, b.max_bytes() - 3);
        }
        if (fitted != value) {
          if (f->is_repeated()) {
            r->SetRepeatedString(m, f, i, std::move(fitted));
          } else {
            r->SetString(m, f, std::move(fitted));
          }
        }
      } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING && b.max_bytes() > 0) {
        std::string value = f->is_repeated() ? r->GetRepeatedString(*m, f, i) : r->GetString(*m, f);
        if (value.size() > b.max_bytes()) {
          value.resize(b.max_bytes());
          if (f->is_repeated()) {
            r->SetRepeatedString(m, f, i, std::move(value));
          } else {
            r->SetString(m, f, std::move(value));
          }
        }
      } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !f->is_map()) {
        Message* sub =
            f->is_repeated() ? r->MutableRepeatedMessage(m, f, i) : r->MutableMessage(m, f);
        if (!IsWellKnown(sub->GetDescriptor())) Fit(sub, depth + 1);
        if (b.max_bytes() > 0 && sub->ByteSizeLong() > b.max_bytes()) sub->Clear();
      }
    }
  }
}

bool NeedsDeclaration(const FieldDescriptor* f, const common::v1::Bounds& b) {
  if (f->is_map()) {
    if (b.max_items() == 0) return true;
    const FieldDescriptor* v = f->message_type()->map_value();
    const FieldDescriptor* k = f->message_type()->map_key();
    const bool has_strings = v->cpp_type() == FieldDescriptor::CPPTYPE_STRING ||
                             k->cpp_type() == FieldDescriptor::CPPTYPE_STRING;
    return has_strings && b.max_bytes() == 0;
  }
  if (f->is_repeated() && b.max_items() == 0) return true;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      return b.max_bytes() == 0;
    case FieldDescriptor::CPPTYPE_MESSAGE:
      if (IsDuration(f->message_type())) return b.min_seconds() >= b.max_seconds();
      if (IsTimestamp(f->message_type())) return false;
      return IsWellKnown(f->message_type()) && b.max_bytes() == 0 &&
             f->message_type()->field_count() > 0;
    default:
      return false;
  }
}

void CollectUnbounded(const Descriptor* d, std::set<std::string>* seen,
                      std::vector<std::string>* out) {
  if (!seen->insert(d->full_name()).second) return;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const auto& b = f->options().GetExtension(common::v1::bounds);
    if (NeedsDeclaration(f, b)) out->push_back(f->full_name());
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
    const Descriptor* sub =
        f->is_map() ? f->message_type()->map_value()->message_type() : f->message_type();
    if (sub != nullptr && !IsWellKnown(sub)) CollectUnbounded(sub, seen, out);
  }
}

}  // namespace

absl::Status CheckRequestBounds(const Message& request) {
  return BoundsChecker().Check(request, "", 0);
}

std::vector<std::string> UnboundedFields(const Descriptor* request) {
  std::set<std::string> seen;
  std::vector<std::string> out;
  CollectUnbounded(request, &seen, &out);
  return out;
}

void FitToBounds(Message* message) { Fit(message, 0); }

bool IsHumanLine(absl::string_view text) { return IsHuman(text, false); }
bool IsHumanText(absl::string_view text) { return IsHuman(text, true); }
std::string HumanTextOf(absl::string_view text) { return AsHuman(text, true); }

std::string Truncated(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t cut = max_bytes;
  // Back up to the start of a UTF-8 character.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80) --cut;
  return absl::StrCat(text.substr(0, cut), "…");
}

}  // namespace orchestrator
