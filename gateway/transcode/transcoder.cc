#include "gateway/transcode/transcoder.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/status/status.h"

namespace orchestrator::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

absl::Status ParseJsonInto(absl::string_view json, Message* message, absl::string_view where) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), message, options);
  if (status.ok()) return absl::OkStatus();
  // The parser's message may end in a picture of where it stopped; one line is enough.
  std::string text = status.message().ToString();
  text = std::string(absl::StripAsciiWhitespace(text.substr(0, text.find('\n'))));
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", text));
}

// The fields a dotted path walks through singular messages, the named one
// last.
absl::StatusOr<std::vector<const FieldDescriptor*>> FindFieldPath(const Descriptor* type,
                                                                  absl::string_view path) {
  std::vector<const FieldDescriptor*> steps;
  const std::vector<absl::string_view> parts = absl::StrSplit(path, '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    const absl::string_view part = parts[i];
    if (type == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("'", path, "' goes through a non-message"));
    }
    const FieldDescriptor* field = type->FindFieldByName(std::string(part));
    if (field == nullptr) field = type->FindFieldByCamelcaseName(std::string(part));
    if (field == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", path, "' is not a field of ", type->full_name()));
    }
    if (field->is_repeated() && i + 1 < parts.size()) {
      return absl::InvalidArgumentError(absl::StrCat("'", path, "' goes through a repeated field"));
    }
    type = field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE ? field->message_type() : nullptr;
    steps.push_back(field);
  }
  return steps;
}

bool IsWellKnownScalar(const Descriptor* type) {
  const std::string& n = type->full_name();
  return n == "google.protobuf.Timestamp" || n == "google.protobuf.Duration" ||
         n == "google.protobuf.FieldMask" ||
         (absl::StartsWith(n, "google.protobuf.") && absl::EndsWith(n, "Value") &&
          n != "google.protobuf.Value");
}

// Sets one field path from a text value (a query parameter or a path
// variable) by the same JSON mapping as bodies: {"a":{"b":"value"}}.
absl::Status SetFromParameter(Message* message, absl::string_view path, absl::string_view value,
                              absl::string_view where) {
  auto steps = FindFieldPath(message->GetDescriptor(), path);
  if (!steps.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", steps.status().message()));
  }
  const FieldDescriptor* f = steps->back();
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !IsWellKnownScalar(f->message_type())) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": '", path, "' is a message; set its fields one by one ('", path, ".<field>')"));
  }
  if (!IsValidUtf8(value)) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": value is not valid UTF-8"));
  }
  // Booleans must be JSON literals; every other scalar may be a JSON string.
  std::string literal =
      f->cpp_type() == FieldDescriptor::CPPTYPE_BOOL && (value == "true" || value == "false")
          ? std::string(value)
          : JsonQuote(value);
  if (f->is_repeated()) literal = absl::StrCat("[", literal, "]");
  std::string json = literal;
  for (auto it = steps->rbegin(); it != steps->rend(); ++it) {
    json = absl::StrCat("{", JsonQuote((*it)->name()), ":", json, "}");
  }
  std::unique_ptr<Message> part(message->New());
  if (auto s = ParseJsonInto(json, part.get(), where); !s.ok()) return s;
  // A path variable or a singular query parameter replaces; a repeated one adds.
  if (!f->is_repeated()) {
    Message* owner = message;
    for (size_t i = 0; i + 1 < steps->size(); ++i) {
      owner = owner->GetReflection()->MutableMessage(owner, (*steps)[i]);
    }
    owner->GetReflection()->ClearField(owner, f);
  }
  message->MergeFrom(*part);
  return absl::OkStatus();
}

int HexValue(char c) {
  return absl::ascii_isdigit(c) ? c - '0' : absl::ascii_tolower(c) - 'a' + 10;
}

}  // namespace

absl::Status CheckJsonContentType(absl::string_view content_type) {
  const std::string type = absl::AsciiStrToLower(
      absl::StripAsciiWhitespace(content_type.substr(0, content_type.find(';'))));
  if (type == "application/json" ||
      (absl::StartsWith(type, "application/") && absl::EndsWith(type, "+json"))) {
    return absl::OkStatus();
  }
  if (type.empty()) {
    return absl::InvalidArgumentError(
        "content-type: a request body needs 'Content-Type: application/json'");
  }
  return absl::InvalidArgumentError(
      absl::StrCat("content-type '", content_type.substr(0, 100), "': send application/json"));
}

std::unique_ptr<Message> NewMessage(const Descriptor* type) {
  return std::unique_ptr<Message>(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(type)->New());
}

absl::StatusOr<std::unique_ptr<Message>> BuildRequest(
    const Route& route, const std::vector<std::pair<std::string, std::string>>& bindings,
    absl::string_view query_string, absl::string_view body) {
  std::unique_ptr<Message> request = NewMessage(route.method->input_type());
  const bool has_body = !absl::StripAsciiWhitespace(body).empty();
  if (has_body && route.body.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(route.http_method, " ", route.pattern, " takes no body"));
  }
  if (has_body) {
    if (!IsValidUtf8(body)) return absl::InvalidArgumentError("body: not valid UTF-8");
    Message* target = request.get();
    if (route.body != "*") {
      const FieldDescriptor* f = request->GetDescriptor()->FindFieldByName(route.body);
      if (f == nullptr || f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || f->is_repeated()) {
        return absl::InternalError(absl::StrCat("route body '", route.body, "' is not a message"));
      }
      target = request->GetReflection()->MutableMessage(request.get(), f);
    }
    if (auto s = ParseJsonInto(body, target, "body"); !s.ok()) return s;
  }
  auto query = ParseQuery(query_string);
  if (!query.ok()) return query.status();
  for (const auto& [key, value] : *query) {
    if (route.body == "*") {
      return absl::InvalidArgumentError(absl::StrCat(
          "query parameter '", key, "': this route takes its fields in the JSON body"));
    }
    if (auto s = SetFromParameter(request.get(), key, value,
                                  absl::StrCat("query parameter '", key, "'"));
        !s.ok()) {
      return s;
    }
  }
  for (const auto& [path, value] : bindings) {
    if (auto s = SetFromParameter(request.get(), path, value, absl::StrCat("path '{", path, "}'"));
        !s.ok()) {
      return s;
    }
  }
  return request;
}

std::string ToJson(const Message& message) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out);
  return out;
}

std::string ErrorJson(const absl::Status& status) {
  return absl::StrCat("{\"code\":", static_cast<int>(status.code()),
                      ",\"status\":", JsonQuote(absl::StatusCodeToString(status.code())),
                      ",\"message\":", JsonQuote(status.message()), ",\"details\":[]}");
}

std::string JsonQuote(absl::string_view text) {
  std::string out = "\"";
  out.reserve(text.size() + 2);
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          static const char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseQuery(
    absl::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::string decoded[2];
    const size_t eq = pair.find('=');
    const absl::string_view parts[2] = {pair.substr(0, eq),
                                        eq == absl::string_view::npos ? "" : pair.substr(eq + 1)};
    for (int p = 0; p < 2; ++p) {
      const absl::string_view in = parts[p];
      for (size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '+') {
          decoded[p] += ' ';
        } else if (in[i] == '%') {
          if (i + 2 >= in.size() || !absl::ascii_isxdigit(in[i + 1]) ||
              !absl::ascii_isxdigit(in[i + 2])) {
            return absl::InvalidArgumentError(
                absl::StrCat("query: bad percent escape in '", pair, "'"));
          }
          decoded[p] += static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2]));
          i += 2;
        } else {
          decoded[p] += in[i];
        }
      }
    }
    if (decoded[0].empty()) return absl::InvalidArgumentError("query: a parameter without a name");
    if (!IsValidUtf8(decoded[0]) || !IsValidUtf8(decoded[1])) {
      return absl::InvalidArgumentError(
          absl::StrCat("query parameter '", parts[0], "': not valid UTF-8"));
    }
    out.emplace_back(std::move(decoded[0]), std::move(decoded[1]));
  }
  return out;
}

bool IsValidUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    int extra;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      const unsigned char cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    static const uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

}  // namespace orchestrator::gateway
