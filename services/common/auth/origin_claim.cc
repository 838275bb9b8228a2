#include "services/common/auth/origin_claim.h"

#include <algorithm>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace orchestrator {
namespace {

constexpr size_t kMaxIdBytes = 128;

bool IsIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

}  // namespace

absl::StatusOr<OriginClaim> ParseOriginClaim(absl::string_view text) {
  OriginClaim claim;
  if (text.empty()) return claim;
  if (text.size() > kMaxOriginClaimBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("origin: at most ", kMaxOriginClaimBytes, " bytes"));
  }
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    const size_t colon = part.find(':');
    const absl::string_view key = part.substr(0, colon);
    const absl::string_view id =
        colon == absl::string_view::npos ? absl::string_view() : part.substr(colon + 1);
    std::string* into = key == "session"   ? &claim.session_id
                        : key == "message" ? &claim.message_id
                        : key == "job"     ? &claim.job_id
                                           : nullptr;
    if (into == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("origin: '", absl::CHexEscape(key),
                                                     "' is not session, message or job (write ",
                                                     "session:<id>,message:<id>,job:<id>)"));
    }
    if (!into->empty()) {
      return absl::InvalidArgumentError(absl::StrCat("origin: ", key, " named twice"));
    }
    if (id.empty() || id.size() > kMaxIdBytes ||
        !std::all_of(id.begin(), id.end(), [](char c) { return IsIdChar(c); })) {
      return absl::InvalidArgumentError(
          absl::StrCat("origin: ", key, " must be an id (letters, digits, _ - ., 1 to ",
                       kMaxIdBytes, " bytes)"));
    }
    *into = std::string(id);
  }
  return claim;
}

std::string FormatOriginClaim(const OriginClaim& claim) {
  std::vector<std::string> parts;
  if (!claim.session_id.empty()) parts.push_back(absl::StrCat("session:", claim.session_id));
  if (!claim.message_id.empty()) parts.push_back(absl::StrCat("message:", claim.message_id));
  if (!claim.job_id.empty()) parts.push_back(absl::StrCat("job:", claim.job_id));
  return absl::StrJoin(parts, ",");
}

}  // namespace orchestrator
