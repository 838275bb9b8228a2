#include "gateway/telegram/bot_api_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <functional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gateway/telegram/telegram_text.h"
#include "gateway/transcode/transcoder.h"
#include "spdlog/spdlog.h"

namespace orchestrator::gateway::telegram {
namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

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

// Writes the request and reads the response on a connected stream, all
// within the stream's deadline.
// One request on a fresh connection: resolve, connect, the TLS handshake
// when there is one (`handshake`), write, read, all asynchronous under one
// deadline, and ended early (the socket closed) once the bridge stops.
template <typename Stream, typename Handshake>
beast::error_code Exchange(net::io_context& io, tcp::resolver& resolver, tcp::socket& socket,
                           Stream& stream, Handshake handshake, const std::string& host,
                           const std::string& port, const http::request<http::string_body>& req,
                           http::response<http::string_body>* res, std::chrono::seconds timeout,
                           const std::atomic<bool>* stopping) {
  beast::error_code result = net::error::timed_out;
  beast::flat_buffer buffer;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  net::steady_timer timer(io);
  bool finished = false;
  auto finish = [&](beast::error_code ec) {
    finished = true;
    result = ec;
    timer.cancel();
  };
  std::function<void()> arm = [&] {
    timer.expires_after(std::chrono::milliseconds(200));
    timer.async_wait([&](beast::error_code ec) {
      if (ec || finished) return;
      if (stopping->load() || std::chrono::steady_clock::now() >= deadline) {
        beast::error_code ignored;
        resolver.cancel();
        socket.close(ignored);
        return;
      }
      arm();
    });
  };
  arm();
  auto exchange = [&] {
    http::async_write(stream, req, [&](beast::error_code ec, size_t) {
      if (ec) return finish(ec);
      http::async_read(stream, buffer, *res, [&](beast::error_code ec2, size_t) { finish(ec2); });
    });
  };
  resolver.async_resolve(host, port, [&](beast::error_code ec, tcp::resolver::results_type r) {
    if (ec) return finish(ec);
    net::async_connect(socket, r, [&](beast::error_code ec2, const tcp::endpoint&) {
      if (ec2) return finish(ec2);
      handshake([&](beast::error_code ec3) {
        if (ec3) return finish(ec3);
        exchange();
      });
    });
  });
  io.run();
  return result;
}

}  // namespace

BotApiClient::BotApiClient(std::string base_url, std::string token,
                           const std::atomic<bool>* stopping)
    : token_(std::move(token)), stopping_(stopping) {
  absl::string_view url = base_url;
  if (absl::ConsumePrefix(&url, "https://")) {
    tls_ = true;
  } else {
    absl::ConsumePrefix(&url, "http://");
  }
  const size_t slash = url.find('/');
  absl::string_view authority = url.substr(0, slash);
  if (slash != absl::string_view::npos) path_prefix_ = std::string(url.substr(slash));
  while (!path_prefix_.empty() && path_prefix_.back() == '/') path_prefix_.pop_back();
  const size_t colon = authority.rfind(':');
  host_ = std::string(authority.substr(0, colon));
  port_ = colon == absl::string_view::npos ? (tls_ ? "443" : "80")
                                           : std::string(authority.substr(colon + 1));
}

absl::StatusOr<std::string> BotApiClient::Post(const std::string& target, const std::string& body,
                                               std::chrono::seconds timeout, int* http_status) {
  net::io_context io;
  tcp::resolver resolver(io);
  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, host_);
  req.set(http::field::content_type, "application/json");
  req.set(http::field::user_agent, "orchestrator-gateway");
  req.body() = body;
  req.prepare_payload();
  http::response<http::string_body> res;
  beast::error_code ec;
  if (tls_) {
    net::ssl::context ctx(net::ssl::context::tls_client);
    ctx.set_default_verify_paths();
    ctx.set_verify_mode(net::ssl::verify_peer);
    beast::ssl_stream<tcp::socket> stream(io, ctx);
    SSL_set_tlsext_host_name(stream.native_handle(), host_.c_str());
    stream.set_verify_callback(net::ssl::host_name_verification(host_));
    ec = Exchange(
        io, resolver, stream.next_layer(), stream,
        [&](auto done) { stream.async_handshake(net::ssl::stream_base::client, done); }, host_,
        port_, req, &res, timeout, stopping_);
  } else {
    tcp::socket socket(io);
    ec = Exchange(
        io, resolver, socket, socket, [](auto done) { done(beast::error_code()); }, host_, port_,
        req, &res, timeout, stopping_);
  }
  if (ec) return absl::UnavailableError(absl::StrCat("Telegram ", host_, ": ", ec.message()));
  *http_status = res.result_int();
  return std::move(res.body());
}

template <typename Response>
absl::StatusOr<Response> BotApiClient::Call(const std::string& method, const std::string& json_body,
                                            std::chrono::seconds timeout) {
  const std::string target = absl::StrCat(path_prefix_, "/bot", token_, "/", method);
  for (int attempt = 0;; ++attempt) {
    int http_status = 0;
    auto body = Post(target, json_body, timeout, &http_status);
    if (!body.ok()) return body.status();
    Response response;
    if (!ParseBotApiJson(*body, &response).ok()) {
      return absl::UnavailableError(
          absl::StrCat("Telegram ", method, ": HTTP ", http_status, " without a Bot API answer"));
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
