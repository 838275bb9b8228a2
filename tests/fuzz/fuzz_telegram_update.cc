// libFuzzer: a webhook body → Telegram update → command and reply text.
// Besides never crashing, splitting keeps its promise: no part over the
// limit, and the parts put together are the text (after U+FFFD repair).
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/str_join.h"
#include "gateway/telegram/telegram_text.h"
#include "gateway/transcode/transcoder.h"

namespace tg = orchestrator::gateway::telegram;

namespace {
size_t Utf16Units(const std::string& s) {
  size_t units = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) units += c >= 0xF0 ? 2 : 1;
  }
  return units;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  auto update = tg::ParseUpdate(input);
  std::string text = input;
  if (update.ok()) {
    text = update->message().text();
    (void)tg::ParseCommand(text);
    (void)update->callback_query().data();
  }
  (void)tg::EscapeHtml(text);
  for (size_t limit : {size_t{3}, size_t{64}, tg::kMaxMessageLength}) {
    const auto parts = tg::SplitMessage(text, limit);
    for (const auto& p : parts) {
      if (Utf16Units(p) > limit || !orchestrator::gateway::IsValidUtf8(p)) __builtin_trap();
    }
    if (orchestrator::gateway::IsValidUtf8(text) && absl::StrJoin(parts, "") != text) {
      __builtin_trap();
    }
  }
  return 0;
}
