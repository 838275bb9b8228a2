#include "services/common/containers/engine_inputs.h"

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/containers/json_fields.h"

namespace orchestrator::containers {
namespace {

constexpr size_t kMaxContainerName = 128;
constexpr size_t kMaxImageRef = 255;
constexpr size_t kMaxTag = 128;
constexpr size_t kMaxLabels = 64;
constexpr size_t kMaxLabelKey = 128;
constexpr size_t kMaxLabelValue = 4 << 10;
constexpr size_t kMaxEnvEntries = 256;
constexpr size_t kMaxEnvKey = 256;
constexpr size_t kMaxEnvEntry = 32 << 10;
constexpr size_t kMaxPath = 1024;
// How much of a refused value an error repeats.
constexpr size_t kShownBytes = 100;

absl::Status Invalid(absl::string_view field, absl::string_view value, absl::string_view rule) {
  const bool cut = value.size() > kShownBytes;
  return absl::InvalidArgumentError(absl::StrCat(field, ": \"",
                                                 absl::CHexEscape(value.substr(0, kShownBytes)),
                                                 cut ? "...\"" : "\"", " is not ", rule));
}

bool IsLowerAlnum(char c) { return absl::ascii_isdigit(c) || absl::ascii_islower(c); }

bool IsHex(absl::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f');
  });
}

// A path component of a reference: lower-case letters and digits, runs of
// them joined by '.', '_', "__" or dashes.
bool IsPathComponent(absl::string_view component) {
  if (component.empty() || !IsLowerAlnum(component.front()) || !IsLowerAlnum(component.back())) {
    return false;
  }
  size_t i = 0;
  while (i < component.size()) {
    if (IsLowerAlnum(component[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < component.size() && !IsLowerAlnum(component[j])) ++j;
    const absl::string_view separator = component.substr(i, j - i);
    const bool dashes =
        std::all_of(separator.begin(), separator.end(), [](char c) { return c == '-'; });
    if (separator != "." && separator != "_" && separator != "__" && !dashes) return false;
    i = j;
  }
  return true;
}

// A registry host: DNS labels of letters, digits and '-', with a port.
bool IsDomain(absl::string_view domain) {
  const size_t colon = domain.find(':');
  if (colon != absl::string_view::npos) {
    int port = 0;
    const absl::string_view digits = domain.substr(colon + 1);
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit) ||
        !absl::SimpleAtoi(digits, &port) || port < 1 || port > 65535) {
      return false;
    }
    domain = domain.substr(0, colon);
  }
  for (absl::string_view label : absl::StrSplit(domain, '.')) {
    if (label.empty() || label.front() == '-' || label.back() == '-' ||
        !std::all_of(label.begin(), label.end(),
                     [](char c) { return absl::ascii_isalnum(c) || c == '-'; })) {
      return false;
    }
  }
  return true;
}

bool IsTag(absl::string_view tag) {
  return !tag.empty() && tag.size() <= kMaxTag &&
         (absl::ascii_isalnum(tag.front()) || tag.front() == '_') &&
         std::all_of(tag.begin(), tag.end(), [](char c) {
           return absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '-';
         });
}

bool IsDigest(absl::string_view digest) {
  const size_t colon = digest.find(':');
  if (colon == absl::string_view::npos || colon == 0) return false;
  const absl::string_view algorithm = digest.substr(0, colon);
  return std::all_of(algorithm.begin(), algorithm.end(), IsLowerAlnum) &&
         digest.size() - colon - 1 >= 32 && IsHex(digest.substr(colon + 1));
}

bool IsImageReference(absl::string_view ref) {
  const size_t at = ref.find('@');
  if (at != absl::string_view::npos) {
    if (!IsDigest(ref.substr(at + 1))) return false;
    ref = ref.substr(0, at);
  }
  const size_t slash = ref.rfind('/');
  const size_t colon = ref.rfind(':');
  if (colon != absl::string_view::npos && (slash == absl::string_view::npos || colon > slash)) {
    if (!IsTag(ref.substr(colon + 1))) return false;
    ref = ref.substr(0, colon);
  }
  std::vector<absl::string_view> components = absl::StrSplit(ref, '/');
  size_t first = 0;
  // The first of several components is a registry when it looks like a
  // host (Docker's rule).
  if (components.size() > 1 &&
      (absl::StrContains(components[0], '.') || absl::StrContains(components[0], ':') ||
       components[0] == "localhost")) {
    if (!IsDomain(components[0])) return false;
    first = 1;
  }
  for (size_t i = first; i < components.size(); ++i) {
    if (!IsPathComponent(components[i])) return false;
  }
  return true;
}

bool IsImageId(absl::string_view id) {
  absl::ConsumePrefix(&id, "sha256:");
  return id.size() >= 12 && id.size() <= 64 && IsHex(id);
}

bool IsEnvName(absl::string_view name) {
  return !name.empty() && name.size() <= kMaxEnvKey &&
         (absl::ascii_isalpha(name.front()) || name.front() == '_') &&
         std::all_of(name.begin(), name.end(),
                     [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
}

bool IsText(absl::string_view text) { return !absl::StrContains(text, '\0') && IsUtf8(text); }

absl::Status ValidateLabelKey(absl::string_view field, absl::string_view key) {
  if (key.empty() || key.size() > kMaxLabelKey || !absl::ascii_isalnum(key.front()) ||
      !std::all_of(key.begin(), key.end(), [](char c) {
        return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-' || c == '/';
      })) {
    return Invalid(field, key,
                   "a label key (a letter or digit, then letters, digits, '.', '_', '-' or '/'; "
                   "at most 128 bytes)");
  }
  return absl::OkStatus();
}

absl::Status ValidateLabelValue(absl::string_view field, absl::string_view key,
                                absl::string_view value) {
  if (value.size() > kMaxLabelValue || !IsText(value)) {
    return Invalid(absl::StrCat(field, "[", key, "]"), value,
                   "a label value (UTF-8 without NUL, at most 4 KiB)");
  }
  return absl::OkStatus();
}

std::string Escape(absl::string_view value, absl::string_view also_kept) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
        absl::StrContains(also_kept, c)) {
      out.push_back(c);
    } else {
      constexpr char kHexDigits[] = "0123456789ABCDEF";
      const auto byte = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHexDigits[byte >> 4]);
      out.push_back(kHexDigits[byte & 0xf]);
    }
  }
  return out;
}

}  // namespace

absl::Status ValidateContainerName(absl::string_view field, absl::string_view name) {
  if (name.empty() || name.size() > kMaxContainerName || !absl::ascii_isalnum(name.front()) ||
      !std::all_of(name.begin(), name.end(), [](char c) {
        return absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '-';
      })) {
    return Invalid(field, name,
                   "a container name (a letter or digit, then letters, digits, '_', '.' or '-'; "
                   "at most 128 bytes)");
  }
  return absl::OkStatus();
}

absl::Status ValidateContainerRef(absl::string_view field, absl::string_view container) {
  return ValidateContainerName(field, container);
}

absl::Status ValidateImageRef(absl::string_view field, absl::string_view image) {
  if (image.empty() || image.size() > kMaxImageRef ||
      (!IsImageId(image) && !IsImageReference(image))) {
    return Invalid(field, image,
                   "an image reference ([host[:port]/]path[:tag] with a lower-case path) or id");
  }
  return absl::OkStatus();
}

absl::Status ValidateLabels(absl::string_view field, const Labels& labels) {
  if (labels.size() > kMaxLabels) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", labels.size(), " labels (at most ", kMaxLabels, ")"));
  }
  for (const auto& [key, value] : labels) {
    if (auto s = ValidateLabelKey(field, key); !s.ok()) return s;
    if (auto s = ValidateLabelValue(field, key, value); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ValidateLabelMatches(absl::string_view field, const std::vector<LabelMatch>& labels) {
  if (labels.size() > kMaxLabels) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", labels.size(), " labels (at most ", kMaxLabels, ")"));
  }
  for (const LabelMatch& match : labels) {
    if (auto s = ValidateLabelKey(field, match.key); !s.ok()) return s;
    if (match.value.has_value()) {
      if (auto s = ValidateLabelValue(field, match.key, *match.value); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateEnv(absl::string_view field, const std::vector<std::string>& env) {
  if (env.size() > kMaxEnvEntries) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", env.size(), " variables (at most ", kMaxEnvEntries, ")"));
  }
  for (size_t i = 0; i < env.size(); ++i) {
    const std::string& entry = env[i];
    const size_t equals = entry.find('=');
    const absl::string_view name = absl::string_view(entry).substr(0, equals);
    if (equals == std::string::npos || !IsEnvName(name) || entry.size() > kMaxEnvEntry ||
        !IsText(entry)) {
      // The value may be a secret: only the name is repeated.
      return Invalid(absl::StrCat(field, "[", i, "]"), name,
                     "the name of a KEY=VALUE (a letter or '_', then letters, digits or '_'; "
                     "UTF-8 without NUL, at most 32 KiB in all)");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateBuildArgs(absl::string_view field,
                               const std::map<std::string, std::string>& args) {
  if (args.size() > kMaxEnvEntries) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", args.size(), " arguments (at most ", kMaxEnvEntries, ")"));
  }
  for (const auto& [name, value] : args) {
    if (!IsEnvName(name)) {
      return Invalid(field, name,
                     "a build argument's name (a letter or '_', then letters, digits or '_')");
    }
    if (value.size() > kMaxEnvEntry || !IsText(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "[", name, "]: not UTF-8 without NUL of at most 32 KiB"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateRelativePath(absl::string_view field, absl::string_view path) {
  bool ok = !path.empty() && path.size() <= kMaxPath && path.front() != '/' && IsText(path);
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") ok = false;
  }
  if (!ok) return Invalid(field, path, "a relative path inside the build context");
  return absl::OkStatus();
}

bool IsUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t length = 0;
    uint32_t code = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      length = 2;
      code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3;
      code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4;
      code = c & 0x07;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    // Overlong forms, surrogates and what is past Unicode.
    if ((length == 2 && code < 0x80) || (length == 3 && code < 0x800) ||
        (length == 4 && code < 0x10000) || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    i += length;
  }
  return true;
}

std::string QueryEscape(absl::string_view value) { return Escape(value, ""); }

std::string PathEscape(absl::string_view value) { return Escape(value, "/:@"); }

std::string LabelFilters(const std::vector<LabelMatch>& labels) {
  nlohmann::json conditions = nlohmann::json::array();
  for (const LabelMatch& match : labels) {
    conditions.push_back(match.value.has_value() ? absl::StrCat(match.key, "=", *match.value)
                                                 : match.key);
  }
  return DumpJson(nlohmann::json{{"label", conditions}});
}

}  // namespace orchestrator::containers
