// orchestrator-gateway: the mesh over HTTP/JSON, and the Telegram bridge.

#include <csignal>
#include <cstdio>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/api/rest_gateway.h"
#include "gateway/routing/route_table.h"
#include "gateway/telegram/telegram_bridge.h"
#include "gateway/transcode/transcoder.h"
#include "services/common/config/process.h"
#include "services/common/http/http_server.h"
#include "services/common/logging/logging.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:8080", "HTTP address: host:port (port 0 picks one)");
ABSL_FLAG(std::string, upstream, "127.0.0.1:50051",
          "the mesh's gRPC address (host:port or unix:/path)");
ABSL_FLAG(std::string, upstreams, "",
          "per-component addresses of a split mesh, e.g. projects=host:port,jobs=host:port "
          "(the others: --upstream)");
ABSL_FLAG(int, threads, 2, "io threads serving HTTP connections");
ABSL_FLAG(int, upstream_threads, 2, "threads completing calls to the mesh and writing their JSON");
ABSL_FLAG(absl::Duration, call_deadline, absl::Seconds(30), "deadline of unary calls upstream");
ABSL_FLAG(int64_t, max_body_bytes, 1 << 20, "larger request bodies get 413");
ABSL_FLAG(int64_t, max_header_bytes, 16 << 10, "larger request headers get 431");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(60),
          "a connection waiting this long for a request's headers is closed");
ABSL_FLAG(absl::Duration, read_timeout, absl::Seconds(30),
          "a request body must arrive within this (else 408)");
ABSL_FLAG(absl::Duration, drain_deadline, absl::Seconds(10),
          "how long answers in flight may finish on SIGTERM");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn or error");
ABSL_FLAG(std::string, telegram_mode, "off",
          "off, polling (getUpdates long polling) or webhook (POST /telegram/webhook)");
ABSL_FLAG(std::string, telegram_api_base, "https://api.telegram.org",
          "the Bot API's base URL (http:// or https://)");
ABSL_FLAG(std::string, telegram_token_file, "", "file holding the bot token");
ABSL_FLAG(std::string, telegram_webhook_secret_file, "",
          "file holding the webhook secret Telegram sends as X-Telegram-Bot-Api-Secret-Token");
ABSL_FLAG(std::string, telegram_users, "",
          "file of allowed users, one per line: <telegram user id> <orchestrator token>");
ABSL_FLAG(std::string, telegram_state, "",
          "file where the bridge keeps its update offset and notification positions");

namespace {

std::chrono::milliseconds Millis(absl::Duration d) {
  return std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
}

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "orchestrator-gateway: %s\n", std::string(s.message()).c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  orchestrator::ParseCommandLineAndEnvironment(
      argc, argv,
      "orchestrator-gateway [--listen=host:port] [--upstream=host:port] [--telegram_mode=...]");
  if (auto s = orchestrator::InitLogging(absl::GetFlag(FLAGS_log_level)); !s.ok()) return Fail(s);

  namespace gw = orchestrator::gateway;
  auto routes = gw::RouteTable::FromServices(gw::PublicServices());
  if (!routes.ok()) return Fail(routes.status());

  gw::TelegramBridge::Options telegram;
  telegram.mode = absl::GetFlag(FLAGS_telegram_mode);
  telegram.api_base = absl::GetFlag(FLAGS_telegram_api_base);
  telegram.token_file = absl::GetFlag(FLAGS_telegram_token_file);
  telegram.webhook_secret_file = absl::GetFlag(FLAGS_telegram_webhook_secret_file);
  telegram.users_file = absl::GetFlag(FLAGS_telegram_users);
  telegram.state_file = absl::GetFlag(FLAGS_telegram_state);
  if (auto s = telegram.Validate(); !s.ok()) return Fail(s);

  const orchestrator::TerminationSignals signals;

  auto upstreams =
      gw::Upstreams::Create(absl::GetFlag(FLAGS_upstream), absl::GetFlag(FLAGS_upstreams));
  if (!upstreams.ok()) return Fail(upstreams.status());
  gw::RestGateway gateway(*std::move(routes), *upstreams,
                          {.call_deadline = Millis(absl::GetFlag(FLAGS_call_deadline)),
                           .upstream_threads = absl::GetFlag(FLAGS_upstream_threads)});
  auto bridge = gw::TelegramBridge::Create(telegram, *upstreams);
  if (!bridge.ok()) return Fail(bridge.status());
  if (*bridge != nullptr && telegram.mode == "webhook") {
    gateway.AddLocalRoute("/telegram/webhook",
                          [b = bridge->get()](orchestrator::http::HttpRequest r,
                                              std::shared_ptr<orchestrator::http::Exchange> e) {
                            b->HandleWebhook(std::move(r), std::move(e));
                          });
  }

  namespace http = orchestrator::http;
  http::HttpLimits limits;
  limits.max_body_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_body_bytes));
  limits.max_header_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_header_bytes));
  limits.idle_timeout = Millis(absl::GetFlag(FLAGS_idle_timeout));
  limits.read_timeout = Millis(absl::GetFlag(FLAGS_read_timeout));
  http::HttpServer server(
      limits,
      [&gateway](http::HttpRequest r, std::shared_ptr<http::Exchange> e) {
        gateway.Handle(std::move(r), std::move(e));
      },
      {.server_name = "orchestrator-gateway", .refusal = [](const absl::Status& status) {
         return http::HttpRefusal{"application/json", gw::ErrorJson(status)};
       }});
  auto port = server.Listen(absl::GetFlag(FLAGS_listen));
  if (!port.ok()) {
    spdlog::critical("cannot start: {}", port.status().ToString());
    return 1;
  }
  server.Start(absl::GetFlag(FLAGS_threads));
  if (*bridge != nullptr) (*bridge)->Start();
  const std::string listen = absl::GetFlag(FLAGS_listen);
  spdlog::info("orchestrator-gateway ready url=http://{}:{} upstream={} routes={} telegram={}",
               listen.substr(0, listen.rfind(':')), *port, absl::GetFlag(FLAGS_upstream),
               gateway.routes().routes().size(), telegram.mode);

  spdlog::info("signal={} shutting down", signals.Wait());
  if (*bridge != nullptr) (*bridge)->Stop();
  server.Shutdown(Millis(absl::GetFlag(FLAGS_drain_deadline)));
  // Whatever is still upstream is cancelled and answered before the server goes.
  gateway.Shutdown(std::chrono::seconds(5));
  spdlog::info("orchestrator-gateway stopped");
  return 0;
}
