#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/telegram/bot_api.pb.h"

namespace orchestrator::gateway::telegram {

// Telegram's limit on a message's text, in UTF-16 code units after entity
// parsing.
inline constexpr size_t kMaxMessageLength = 4096;

// Text made safe for parse_mode HTML: <, > and & become entities.
std::string EscapeHtml(absl::string_view text);

// Splits text into parts of at most `limit` UTF-16 code units, at a line
// break or a space when one is near, never inside a character. Invalid
// UTF-8 bytes become U+FFFD.
std::vector<std::string> SplitMessage(absl::string_view text, size_t limit = kMaxMessageLength);

// The Bot API's JSON into one of its shapes. Fields this bridge does not
// know are ignored: the Bot API adds fields over time.
absl::Status ParseBotApiJson(absl::string_view json, google::protobuf::Message* out);

// One Update from the Bot API's JSON (a webhook body). INVALID_ARGUMENT
// for anything that is not one: malformed JSON, wrong types, no update_id.
absl::StatusOr<Update> ParseUpdate(absl::string_view json);

// A bot command's name and its argument: "/cancel@bot j1" → {"cancel", "j1"};
// {"", ""} for a text that is not a command.
std::pair<std::string, std::string> ParseCommand(absl::string_view text);

}  // namespace orchestrator::gateway::telegram
