#include "gateway/telegram/bot_api_client.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gateway/telegram/telegram_text.h"
#include "gateway/transcode/transcoder.h"
#include "spdlog/spdlog.h"

namespace orchestrator::gateway::telegram {
namespace {

std::string KeyboardJson(const Keyboard& keyboard) {
  std::vector<std::string> rows;
  for (const auto& row : keyboard) {
    std::vector<std::string> buttons;
    for (const auto& b : row) {
      buttons.push_back(absl::StrCat("{\"text\":", JsonQuote(b.text),
                                     ",\"callback_data\":", JsonQuote(b.data), "}"));
    }
    rows.push_back(absl::StrCat("[", absl::StrJoin(buttons, ","), "]"));
  }
  return absl::StrCat("{\"inline_keyboard\":[", absl::StrJoin(rows, ","), "]}");
}

}  // namespace

BotApiClient::BotApiClient(std::string base_url, std::string token,
                           const std::atomic<bool>* stopping)
    : token_(std::move(token)), stopping_(stopping) {
  auto base = http::BaseUrl::Parse(base_url);
  if (!base.ok()) {
    base_status_ = base.status();
    return;
  }
  http_ = std::make_unique<http::HttpClient>(
      *std::move(base),
      http::ClientOptions{.user_agent = "orchestrator-gateway", .cancel = stopping_});
}

template <typename Response>
absl::StatusOr<Response> BotApiClient::Call(const std::string& method, const std::string& json_body,
                                            std::chrono::seconds timeout) {
  if (http_ == nullptr) return base_status_;
  http::Request request;
  request.method = "POST";
  request.target = absl::StrCat("/bot", token_, "/", method);
  request.headers = {{"Content-Type", "application/json"}};
  request.body = json_body;
  request.timeout = absl::FromChrono(timeout);
  for (int attempt = 0;; ++attempt) {
    auto answer = http_->Send(request);
    if (!answer.ok()) {
      return absl::Status(answer.status().code(),
                          absl::StrCat("Telegram ", answer.status().message()));
    }
    Response response;
    if (!ParseBotApiJson(answer->body, &response).ok()) {
      return absl::UnavailableError(absl::StrCat("Telegram ", method, ": HTTP ", answer->status,
                                                 " without a Bot API answer"));
    }
    if (response.ok()) return response;
    if (response.error_code() == 429 && attempt < max_retries) {
      const int wait = std::max(1, response.parameters().retry_after());
      spdlog::warn("telegram {} rate limited; retrying after {}s", method, wait);
      const absl::Time until = absl::Now() + absl::Seconds(wait);
      while (absl::Now() < until && !stopping_->load()) absl::SleepFor(absl::Milliseconds(50));
      if (stopping_->load()) return absl::CancelledError("stopping");
      continue;
    }
    const std::string message =
        absl::StrCat("Telegram ", method, ": ", response.error_code(), " ", response.description());
    switch (response.error_code()) {
      case 400:
        return absl::InvalidArgumentError(message);
      case 401:
        return absl::UnauthenticatedError(message);
      case 403:
        return absl::PermissionDeniedError(message);
      case 404:
        return absl::NotFoundError(message);
      case 429:
        return absl::ResourceExhaustedError(message);
      default:
        return absl::UnavailableError(message);
    }
  }
}

absl::StatusOr<std::vector<Update>> BotApiClient::GetUpdates(int64_t offset, int timeout_seconds) {
  auto response =
      Call<UpdatesResponse>("getUpdates",
                            absl::StrCat("{\"offset\":", offset, ",\"timeout\":", timeout_seconds,
                                         ",\"allowed_updates\":[\"message\",\"callback_query\"]}"),
                            std::chrono::seconds(timeout_seconds + 10));
  if (!response.ok()) return response.status();
  return std::vector<Update>(response->result().begin(), response->result().end());
}

absl::StatusOr<int64_t> BotApiClient::SendMessage(int64_t chat_id, const std::string& html,
                                                  const Keyboard& keyboard) {
  std::string json = absl::StrCat("{\"chat_id\":", chat_id, ",\"text\":", JsonQuote(html),
                                  ",\"parse_mode\":\"HTML\"");
  if (!keyboard.empty()) absl::StrAppend(&json, ",\"reply_markup\":", KeyboardJson(keyboard));
  json += "}";
  auto response = Call<ApiResponse>("sendMessage", json, std::chrono::seconds(30));
  if (!response.ok()) return response.status();
  const auto& fields = response->result().struct_value().fields();
  auto id = fields.find("message_id");
  return id == fields.end() ? 0 : static_cast<int64_t>(id->second.number_value());
}

absl::Status BotApiClient::EditMessageText(int64_t chat_id, int64_t message_id,
                                           const std::string& html, const Keyboard& keyboard) {
  std::string json = absl::StrCat("{\"chat_id\":", chat_id, ",\"message_id\":", message_id,
                                  ",\"text\":", JsonQuote(html), ",\"parse_mode\":\"HTML\"");
  if (!keyboard.empty()) absl::StrAppend(&json, ",\"reply_markup\":", KeyboardJson(keyboard));
  json += "}";
  return Call<ApiResponse>("editMessageText", json, std::chrono::seconds(30)).status();
}

absl::Status BotApiClient::SendChatAction(int64_t chat_id, const std::string& action) {
  return Call<ApiResponse>(
             "sendChatAction",
             absl::StrCat("{\"chat_id\":", chat_id, ",\"action\":", JsonQuote(action), "}"),
             std::chrono::seconds(10))
      .status();
}

absl::Status BotApiClient::AnswerCallbackQuery(const std::string& id, const std::string& text) {
  return Call<ApiResponse>("answerCallbackQuery",
                           absl::StrCat("{\"callback_query_id\":", JsonQuote(id),
                                        ",\"text\":", JsonQuote(text), "}"),
                           std::chrono::seconds(10))
      .status();
}

}  // namespace orchestrator::gateway::telegram
