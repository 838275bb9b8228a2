#include "clients/cli/request.h"

#include <google/protobuf/util/json_util.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "services/common/commands/format.h"

namespace orchestrator::cli {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

absl::Status Expected(const std::string& what, const std::string& text) {
  return absl::InvalidArgumentError(absl::StrCat("expected ", what, ", got '", text, "'"));
}

void SetSeconds(Message* m, absl::Duration since_epoch_or_length) {
  const Descriptor* d = m->GetDescriptor();
  const int64_t seconds =
      absl::IDivDuration(since_epoch_or_length, absl::Seconds(1), &since_epoch_or_length);
  m->GetReflection()->SetInt64(m, d->FindFieldByName("seconds"), seconds);
  m->GetReflection()->SetInt32(
      m, d->FindFieldByName("nanos"),
      static_cast<int32_t>(absl::ToInt64Nanoseconds(since_epoch_or_length)));
}

absl::Status SetMessage(Message* m, const std::string& text, absl::Time now) {
  const std::string& type = m->GetDescriptor()->full_name();
  if (type == "google.protobuf.Duration") {
    absl::Duration d;
    if (!ParseHumanDuration(text, &d)) return Expected("a duration such as 90s, 1h30m or 2d", text);
    SetSeconds(m, d);
    return absl::OkStatus();
  }
  if (type == "google.protobuf.Timestamp") {
    absl::Time t;
    absl::Duration ago;
    std::string error;
    if (ParseHumanDuration(text, &ago)) {
      t = now - ago;
    } else if (!absl::ParseTime(absl::RFC3339_full, text, &t, &error)) {
      return Expected("a time (2026-11-21T10:00:00Z) or an age (10m, 2h)", text);
    }
    SetSeconds(m, t - absl::UnixEpoch());
    return absl::OkStatus();
  }
  if (type == "google.protobuf.Struct") {
    google::protobuf::util::JsonParseOptions options;
    if (!google::protobuf::util::JsonStringToMessage(text, m, options).ok()) {
      return Expected("a JSON object", text);
    }
    return absl::OkStatus();
  }
  if (type == "google.protobuf.FieldMask") {
    const FieldDescriptor* paths = m->GetDescriptor()->FindFieldByName("paths");
    for (absl::string_view p : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
      m->GetReflection()->AddString(m, paths, std::string(absl::StripAsciiWhitespace(p)));
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("cannot be set from text (", type, ")"));
}

absl::Status SetOne(Message* m, const FieldDescriptor* f, const std::string& text, absl::Time now) {
  const Reflection* r = m->GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      rep ? r->AddString(m, f, text) : r->SetString(m, f, text);
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t v;
      if (!absl::SimpleAtoi(text, &v)) return Expected("a whole number", text);
      rep ? r->AddInt32(m, f, v) : r->SetInt32(m, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t v;
      if (!absl::SimpleAtoi(text, &v)) return Expected("a whole number", text);
      rep ? r->AddInt64(m, f, v) : r->SetInt64(m, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t v;
      if (!absl::SimpleAtoi(text, &v)) return Expected("a whole number", text);
      rep ? r->AddUInt32(m, f, v) : r->SetUInt32(m, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t v;
      if (!absl::SimpleAtoi(text, &v)) return Expected("a whole number", text);
      rep ? r->AddUInt64(m, f, v) : r->SetUInt64(m, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      double v;
      if (!absl::SimpleAtod(text, &v)) return Expected("a number", text);
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_FLOAT) {
        rep ? r->AddFloat(m, f, static_cast<float>(v)) : r->SetFloat(m, f, static_cast<float>(v));
      } else {
        rep ? r->AddDouble(m, f, v) : r->SetDouble(m, f, v);
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      const std::string t = absl::AsciiStrToLower(text);
      bool v;
      if (t == "true" || t == "yes" || t == "1") {
        v = true;
      } else if (t == "false" || t == "no" || t == "0") {
        v = false;
      } else {
        return Expected("yes or no", text);
      }
      rep ? r->AddBool(m, f, v) : r->SetBool(m, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      auto v = commands::ParseEnumLabel(f->enum_type(), text);
      if (!v.ok()) return v.status();
      rep ? r->AddEnum(m, f, *v) : r->SetEnum(m, f, *v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      Message* sub = rep ? r->AddMessage(m, f) : r->MutableMessage(m, f);
      return SetMessage(sub, text, now);
    }
  }
  return absl::InternalError("unknown field type");
}

}  // namespace

bool ParseHumanDuration(const std::string& text, absl::Duration* out) {
  absl::string_view t = text;
  int64_t days;
  if (absl::ConsumeSuffix(&t, "d") && absl::SimpleAtoi(t, &days) && days >= 0) {
    *out = absl::Hours(24 * days);
    return true;
  }
  // absl wants a unit on every number ("90" is refused, "90s" is not).
  return absl::ParseDuration(text, out) && *out >= absl::ZeroDuration();
}

absl::Status SetFromText(Message* message, const std::string& path, const std::string& text,
                         absl::Time now, bool split_lists) {
  Message* m = message;
  std::vector<std::string> parts = absl::StrSplit(path, '.');
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const FieldDescriptor* f = m->GetDescriptor()->FindFieldByName(parts[i]);
    if (f == nullptr || f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || f->is_repeated()) {
      return absl::InternalError(absl::StrCat("no field ", path, " in ", message->GetTypeName()));
    }
    m = m->GetReflection()->MutableMessage(m, f);
  }
  const FieldDescriptor* f = m->GetDescriptor()->FindFieldByName(parts.back());
  if (f == nullptr) {
    return absl::InternalError(absl::StrCat("no field ", path, " in ", message->GetTypeName()));
  }
  if (f->is_map()) {
    // KEY=VALUE, once per entry (--answer a=1 --answer b=2); a later one wins.
    const size_t eq = text.find('=');
    if (eq == std::string::npos || eq == 0) return Expected("KEY=VALUE", text);
    const FieldDescriptor* key = f->message_type()->map_key();
    const FieldDescriptor* value = f->message_type()->map_value();
    if (key->cpp_type() != FieldDescriptor::CPPTYPE_STRING ||
        value->cpp_type() != FieldDescriptor::CPPTYPE_STRING) {
      return absl::InternalError(absl::StrCat(path, " is not a map of strings"));
    }
    Message* entry = m->GetReflection()->AddMessage(m, f);
    entry->GetReflection()->SetString(entry, key, text.substr(0, eq));
    entry->GetReflection()->SetString(entry, value, text.substr(eq + 1));
    return absl::OkStatus();
  }
  if (f->is_repeated() && f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE && split_lists) {
    for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
      if (auto s = SetOne(m, f, std::string(absl::StripAsciiWhitespace(item)), now); !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }
  return SetOne(m, f, text, now);
}

}  // namespace orchestrator::cli
