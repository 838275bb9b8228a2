#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/telegram/bot_api.pb.h"
#include "services/common/http/http_client.h"

namespace orchestrator::gateway::telegram {

// One inline keyboard button: its label and the callback_data it sends back.
struct Button {
  std::string text;
  std::string data;
};
using Keyboard = std::vector<std::vector<Button>>;

// The one place that talks to the Telegram Bot API: POST
// <base>/bot<token>/<method> with a JSON body, over http:// or https://.
// A 429 is waited out for its retry_after (at most `max_retries` times)
// before it is reported; other Bot API errors come back as statuses with
// Telegram's description.
class BotApiClient {
 public:
  BotApiClient(std::string base_url, std::string token, const std::atomic<bool>* stopping);

  absl::StatusOr<std::vector<Update>> GetUpdates(int64_t offset, int timeout_seconds);
  // Sends HTML text (escape it first); returns the new message's id.
  absl::StatusOr<int64_t> SendMessage(int64_t chat_id, const std::string& html,
                                      const Keyboard& keyboard = {});
  absl::Status EditMessageText(int64_t chat_id, int64_t message_id, const std::string& html,
                               const Keyboard& keyboard = {});
  absl::Status SendChatAction(int64_t chat_id, const std::string& action);
  absl::Status AnswerCallbackQuery(const std::string& id, const std::string& text);

  int max_retries = 5;

 private:
  // The Bot API's answer to one call, after waiting out any 429s, read once
  // into its envelope: ApiResponse, or UpdatesResponse for getUpdates.
  template <typename Response>
  absl::StatusOr<Response> Call(const std::string& method, const std::string& json_body,
                                std::chrono::seconds timeout);

  // The base URL's error when it could not be parsed (every call returns it).
  absl::Status base_status_;
  std::unique_ptr<orchestrator::http::HttpClient> http_;
  std::string token_;
  const std::atomic<bool>* stopping_;
};

}  // namespace orchestrator::gateway::telegram
