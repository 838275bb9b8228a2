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
  std::vector<std::string> parts;
  std::string current;
  size_t units = 0;
  // Where current could be cut: after its last line break, else its last space.
  size_t last_break = std::string::npos, last_break_units = 0;
  size_t last_space = std::string::npos, last_space_units = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t n = 0;
    std::string cp = NextCodePoint(text, &i, &n);
    if (units + n > limit) {
      size_t cut = current.size(), cut_units = units;
      if (last_break != std::string::npos) {
        cut = last_break;
        cut_units = last_break_units;
      } else if (last_space != std::string::npos) {
        cut = last_space;
        cut_units = last_space_units;
      }
      parts.push_back(current.substr(0, cut));
      current = current.substr(cut);
      units -= cut_units;
      last_break = last_space = std::string::npos;
      // What remains starts the next part; find its own cut points.
      for (size_t k = 0, u = 0; k < current.size();) {
        size_t nn = 0;
        std::string c2 = NextCodePoint(current, &k, &nn);
        u += nn;
        if (c2 == "\n") last_break = k, last_break_units = u;
        if (c2 == " ") last_space = k, last_space_units = u;
      }
    }
    current += cp;
    units += n;
    if (cp == "\n") last_break = current.size(), last_break_units = units;
    if (cp == " ") last_space = current.size(), last_space_units = units;
  }
  if (!current.empty() || parts.empty()) parts.push_back(current);
  return parts;
}

absl::StatusOr<Update> ParseUpdate(absl::string_view json) {
  Update update;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // the Bot API adds fields over time
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &update, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a Telegram update: ", status.message().ToString()));
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
