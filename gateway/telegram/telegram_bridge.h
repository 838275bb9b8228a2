#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "gateway/api/upstreams.h"
#include "gateway/telegram/bot_api.pb.h"
#include "gateway/telegram/bot_api_client.h"
#include "services/common/http/http_server.h"

namespace orchestrator::gateway {

// Lets allowed Telegram users chat with their Product-Owner session: a text
// message becomes SessionService.SendMessage as the orchestrator user the
// allowlist maps the Telegram user to ("typing" shows while the agent
// works; the reply comes back split at Telegram's limit); the user's
// notifications are pushed to their chat; /start, /help, /projects,
// /status and /cancel (confirmed with inline buttons) are answered by the
// bridge. Updates arrive by long polling (the offset is persisted, and
// each message is sent with its update id as idempotency key, so a restart
// neither loses nor repeats one) or by webhook (the secret header checked
// in constant time).
class TelegramBridge {
 public:
  struct Options {
    std::string mode = "off";  // off, polling, webhook
    std::string api_base = "https://api.telegram.org";
    std::string token_file;
    std::string webhook_secret_file;
    std::string users_file;
    std::string state_file;
    int poll_timeout_seconds = 20;
    std::chrono::milliseconds typing_interval{4000};
    std::chrono::milliseconds call_deadline{30'000};
    // What is missing or contradictory, naming the flag.
    absl::Status Validate() const;
  };

  // nullptr when the mode is off. Reads the token, secret, users and state.
  static absl::StatusOr<std::unique_ptr<TelegramBridge>> Create(const Options& options,
                                                                Upstreams mesh);
  ~TelegramBridge();

  void Start();
  void Stop();

  // POST /telegram/webhook.
  void HandleWebhook(http::HttpRequest request, std::shared_ptr<http::Exchange> exchange);

 private:
  struct AllowedUser {
    int64_t telegram_id;
    std::string token;
  };
  TelegramBridge(Options options, Upstreams mesh, std::string bot_token, std::string webhook_secret,
                 std::map<int64_t, AllowedUser> users, telegram::BridgeState state);

  void PollLoop();
  void WebhookLoop();
  // Handles one update; returns once its effect is durable (a message is
  // accepted by its session), so that the update may be confirmed.
  // False when it was cut short by Stop: not to be confirmed.
  bool HandleUpdate(const telegram::Update& update);
  bool OnMessage(int64_t update_id, const telegram::Message& message);
  void OnCallback(const telegram::CallbackQuery& query);
  // `request_id` makes a redelivered update attach to the same turn.
  bool StartTurn(const AllowedUser& user, int64_t chat_id, const std::string& request_id,
                 const std::string& text);
  void WatchNotifications(AllowedUser user);
  // Plain text, escaped and split; false when Telegram did not take it all.
  // `choices`: buttons under the (last part of the) text, each sending its
  // words back as the user's next message.
  bool Say(int64_t chat_id, const std::string& text,
           const google::protobuf::RepeatedPtrField<std::string>& choices = {});
  // A call to the mesh as `user`, cancelled by Stop while it lasts.
  class LiveContext {
   public:
    LiveContext(TelegramBridge* bridge, const AllowedUser& user, bool deadline);
    ~LiveContext();
    grpc::ClientContext* get() { return &context_; }
    grpc::ClientContext* operator->() { return &context_; }

   private:
    TelegramBridge* bridge_;
    grpc::ClientContext context_;
  };
  LiveContext Context(const AllowedUser& user, bool deadline) { return {this, user, deadline}; }
  // A stub of one of the mesh's services, at wherever that service is.
  template <typename Service>
  std::unique_ptr<typename Service::Stub> Stub() const {
    return Service::NewStub(mesh_.For(Service::service_full_name()));
  }
  void SaveState();
  // Runs fn on a thread of its own that Stop waits for.
  void Spawn(std::function<void()> fn);

  std::string ProjectsText(const AllowedUser& user);
  std::string StatusText(const AllowedUser& user);
  void AskCancel(const AllowedUser& user, int64_t chat_id, const std::string& job_id);

  const Options options_;
  Upstreams mesh_;
  const std::string webhook_secret_;
  const std::map<int64_t, AllowedUser> users_;
  std::atomic<bool> stopping_{false};
  telegram::BotApiClient bot_;

  absl::Mutex save_mu_;  // one SaveState at a time: snapshot, write, rename
  absl::Mutex state_mu_;
  telegram::BridgeState state_ ABSL_GUARDED_BY(state_mu_);

  absl::Mutex mu_;
  std::set<grpc::ClientContext*> live_calls_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  struct Pending {
    telegram::Update update;
    std::function<void()> done;    // handled: 200
    std::function<void()> refuse;  // cut short: 503, Telegram sends it again
  };
  std::deque<Pending> webhook_queue_ ABSL_GUARDED_BY(mu_);
  // Webhook updates taken recently: Telegram redelivers what it thinks lost.
  std::set<int64_t> recent_updates_ ABSL_GUARDED_BY(mu_);
  std::deque<int64_t> recent_order_ ABSL_GUARDED_BY(mu_);
};

}  // namespace orchestrator::gateway
