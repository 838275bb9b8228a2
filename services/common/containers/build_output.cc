#include "services/common/containers/build_output.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "services/common/containers/json_fields.h"

namespace orchestrator::containers {

BuildOutputReader::BuildOutputReader(std::function<void(const std::string& line)> on_output)
    : on_output_(std::move(on_output)) {}

void BuildOutputReader::Feed(absl::string_view bytes) {
  while (!bytes.empty()) {
    const size_t newline = bytes.find('\n');
    const absl::string_view part = bytes.substr(0, newline);
    if (!skipping_) {
      if (message_.size() + part.size() > kMaxMessageBytes) {
        skipping_ = true;
        message_.clear();
        Line(absl::StrCat("(a progress message of more than ", kMaxMessageBytes,
                          " bytes was left out)"));
      } else {
        message_.append(part.data(), part.size());
      }
    }
    if (newline == absl::string_view::npos) return;
    bytes.remove_prefix(newline + 1);
    if (!skipping_) Message(message_);
    message_.clear();
    skipping_ = false;
  }
}

void BuildOutputReader::Message(absl::string_view text) {
  if (absl::StripAsciiWhitespace(text).empty()) return;
  const nlohmann::json message = ParseJson(text);
  if (!message.is_object()) {
    // Not the engine's JSON: still the build's output.
    Output(absl::StrCat(text, "\n"));
    return;
  }
  if (Field(message, "error") != nullptr || Field(message, "errorDetail") != nullptr) {
    std::string detail = StringField(message, "error");
    if (const nlohmann::json* details = Field(message, "errorDetail"); details != nullptr) {
      const std::string more = StringField(*details, "message");
      if (!more.empty()) detail = more;
    }
    if (detail.empty()) detail = "the engine reported an error without a message";
    error_ = std::string(absl::StripAsciiWhitespace(detail.substr(0, kMaxTailBytes)));
    return;
  }
  if (const nlohmann::json* aux = Field(message, "aux"); aux != nullptr) {
    const std::string id = StringField(*aux, "ID");
    if (!id.empty()) image_id_ = id;
  }
  Output(StringField(message, "stream"));
  const std::string status = StringField(message, "status");
  if (!status.empty()) Output(absl::StrCat(status, "\n"));
}

void BuildOutputReader::Output(absl::string_view text) {
  while (!text.empty()) {
    const size_t newline = text.find('\n');
    const size_t room = kMaxLineBytes - line_.size();
    if (newline != absl::string_view::npos && newline <= room) {
      line_.append(text.data(), newline);
      text.remove_prefix(newline + 1);
      Line(std::exchange(line_, {}));
      continue;
    }
    const size_t take = std::min(room, text.size());
    line_.append(text.data(), take);
    text.remove_prefix(take);
    if (line_.size() == kMaxLineBytes) Line(std::exchange(line_, {}));
  }
}

void BuildOutputReader::Line(std::string line) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  on_output_(line);
  tail_.push_back(std::move(line));
  if (tail_.size() > kTailLines) tail_.pop_front();
}

absl::StatusOr<std::string> BuildOutputReader::Finish() {
  if (!line_.empty()) Line(std::exchange(line_, {}));
  if (error_.empty()) return image_id_;
  // The last lines that fit in kMaxTailBytes, the newest kept whole first.
  std::vector<absl::string_view> shown;
  size_t bytes = 0;
  for (auto it = tail_.rbegin(); it != tail_.rend(); ++it) {
    absl::string_view line = *it;
    if (bytes + line.size() + 1 > kMaxTailBytes) {
      if (shown.empty()) shown.push_back(line.substr(line.size() - (kMaxTailBytes - 1)));
      break;
    }
    bytes += line.size() + 1;
    shown.push_back(line);
  }
  std::reverse(shown.begin(), shown.end());
  std::string status = absl::StrCat("the image build failed: ", error_);
  if (!shown.empty()) {
    absl::StrAppend(&status, "\nthe build's last output:\n", absl::StrJoin(shown, "\n"));
  }
  return absl::FailedPreconditionError(status);
}

}  // namespace orchestrator::containers
