#include "gateway/telegram/telegram_text.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace orchestrator::gateway::telegram {
namespace {

// The next code point of text at *i (advancing it) as UTF-8 bytes; an
// invalid sequence yields U+FFFD and consumes one byte.
std::string NextCodePoint(absl::string_view text, size_t* i, size_t* utf16_units) {
  const unsigned char c = static_cast<unsigned char>(text[*i]);
  int extra = c < 0x80             ? 0
              : (c & 0xE0) == 0xC0 ? 1
              : (c & 0xF0) == 0xE0 ? 2
              : (c & 0xF8) == 0xF0 ? 3
                                   : -1;
  uint32_t cp = extra == 0 ? c : extra == 1 ? (c & 0x1F) : extra == 2 ? (c & 0x0F) : (c & 0x07);
  bool ok = extra >= 0 && *i + extra < text.size();
  for (int k = 1; ok && k <= extra; ++k) {
    const unsigned char cc = static_cast<unsigned char>(text[*i + k]);
    if ((cc & 0xC0) != 0x80) ok = false;
    cp = (cp << 6) | (cc & 0x3F);
  }
  static const uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
  if (ok && (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) ok = false;
  if (!ok) {
    *i += 1;
    *utf16_units = 1;
    return "\xEF\xBF\xBD";
  }
  std::string out(text.substr(*i, extra + 1));
  *i += extra + 1;
  *utf16_units = cp >= 0x10000 ? 2 : 1;
  return out;
}

}  // namespace

std::string EscapeHtml(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::vector<std::string> SplitMessage(absl::string_view text, size_t limit) {
  struct CodePoint {
    std::string bytes;
    size_t units;
  };
  std::vector<CodePoint> cps;
  for (size_t i = 0; i < text.size();) {
    size_t units = 0;
    std::string bytes = NextCodePoint(text, &i, &units);
    cps.push_back({std::move(bytes), units});
  }
  std::vector<std::string> parts;
  size_t start = 0;
  while (start < cps.size()) {
    // As many code points as fit, then back to just after the last line
    // break (else space) among them, when there is one.
    size_t end = start, units = 0;
    size_t last_break = 0, last_space = 0;
    while (end < cps.size() && units + cps[end].units <= std::max<size_t>(limit, 2)) {
      units += cps[end].units;
      if (cps[end].bytes == "\n") last_break = end + 1;
      if (cps[end].bytes == " ") last_space = end + 1;
      ++end;
    }
    if (end == start) end = start + 1;  // a limit below one character: one per part
    if (end < cps.size()) {
      if (last_break > start) {
        end = last_break;
      } else if (last_space > start) {
        end = last_space;
      }
    }
    std::string part;
    for (size_t k = start; k < end; ++k) part += cps[k].bytes;
    parts.push_back(std::move(part));
    start = end;
  }
  if (parts.empty()) parts.emplace_back();
  return parts;
}

absl::Status ParseBotApiJson(absl::string_view json, google::protobuf::Message* out) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), out, options);
  if (status.ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(status.message().ToString());
}

absl::StatusOr<Update> ParseUpdate(absl::string_view json) {
  Update update;
  if (auto s = ParseBotApiJson(json, &update); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("not a Telegram update: ", s.message()));
  }
  if (update.update_id() <= 0) {
    return absl::InvalidArgumentError("not a Telegram update: no update_id");
  }
  return update;
}

std::pair<std::string, std::string> ParseCommand(absl::string_view text) {
  text = absl::StripLeadingAsciiWhitespace(text);
  if (text.empty() || text[0] != '/') return {"", ""};
  const size_t space = text.find_first_of(" \n\t");
  absl::string_view name = text.substr(1, space == absl::string_view::npos ? text.npos : space - 1);
  name = name.substr(0, name.find('@'));
  absl::string_view arg =
      space == absl::string_view::npos ? "" : absl::StripAsciiWhitespace(text.substr(space));
  return {absl::AsciiStrToLower(name), std::string(arg)};
}

}  // namespace orchestrator::gateway::telegram
