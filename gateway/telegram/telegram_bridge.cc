#include "gateway/telegram/telegram_bridge.h"

#include <google/protobuf/util/json_util.h>
#include <openssl/crypto.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gateway/telegram/telegram_text.h"
#include "gateway/transcode/transcoder.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "orchestrator/sessions/v1/sessions.grpc.pb.h"
#include "services/common/status/status.h"
#include "spdlog/spdlog.h"

namespace orchestrator::gateway {
namespace {

namespace jobs = orchestrator::jobs::v1;
namespace projects = orchestrator::projects::v1;
namespace sessions = orchestrator::sessions::v1;
using telegram::Button;
using telegram::EscapeHtml;

// The callback data of an answer the agent offered: "say:<its words>".
constexpr char kSayPrefix[] = "say:";

constexpr const char* kHelp =
    "I pass your messages to your Product-Owner agent and bring back its answers.\n\n"
    "Just write what you want built or changed. Commands:\n"
    "/projects – your projects\n"
    "/status – your session and running jobs\n"
    "/cancel [job id] – cancel a running job (you confirm first)\n"
    "/help – this text";

absl::StatusOr<std::string> ReadSecretFile(const std::string& path, const char* flag) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("--", flag, ": cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string value(absl::StripAsciiWhitespace(ss.str()));
  if (value.empty())
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", path, " is empty"));
  return value;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// "JOB_STATE_RUNNING" → "running".
std::string EnumLabel(const std::string& name, absl::string_view prefix) {
  absl::string_view label = name;
  absl::ConsumePrefix(&label, prefix);
  return absl::AsciiStrToLower(label);
}

std::string JobStateName(jobs::JobState s) {
  return EnumLabel(jobs::JobState_Name(s), "JOB_STATE_");
}

}  // namespace

absl::Status TelegramBridge::Options::Validate() const {
  if (mode == "off") return absl::OkStatus();
  if (mode != "polling" && mode != "webhook") {
    return absl::InvalidArgumentError(
        absl::StrCat("--telegram_mode: '", mode, "' is not off, polling or webhook"));
  }
  if (!absl::StartsWith(api_base, "http://") && !absl::StartsWith(api_base, "https://")) {
    return absl::InvalidArgumentError("--telegram_api_base: must start with http:// or https://");
  }
  if (token_file.empty()) return absl::InvalidArgumentError("--telegram_token_file: required");
  if (users_file.empty()) return absl::InvalidArgumentError("--telegram_users: required");
  if (state_file.empty()) return absl::InvalidArgumentError("--telegram_state: required");
  if (mode == "webhook" && webhook_secret_file.empty()) {
    return absl::InvalidArgumentError(
        "--telegram_webhook_secret_file: required in webhook mode (Telegram's secret_token)");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TelegramBridge>> TelegramBridge::Create(const Options& options,
                                                                       Upstreams mesh) {
  if (auto s = options.Validate(); !s.ok()) return s;
  if (options.mode == "off") return nullptr;
  auto token = ReadSecretFile(options.token_file, "telegram_token_file");
  if (!token.ok()) return token.status();
  std::string secret;
  if (options.mode == "webhook") {
    auto s = ReadSecretFile(options.webhook_secret_file, "telegram_webhook_secret_file");
    if (!s.ok()) return s.status();
    secret = *s;
  }
  auto users_text = ReadSecretFile(options.users_file, "telegram_users");
  if (!users_text.ok()) return users_text.status();
  std::map<int64_t, AllowedUser> users;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(*users_text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    int64_t id = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &id) || id <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("--telegram_users: line ", line_number,
                                                     " is not '<telegram user id> <token>'"));
    }
    users[id] = AllowedUser{id, std::string(parts[1])};
  }
  telegram::BridgeState state;
  if (std::ifstream in(options.state_file); in) {
    std::stringstream ss;
    ss << in.rdbuf();
    if (!google::protobuf::util::JsonStringToMessage(ss.str(), &state).ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--telegram_state: ", options.state_file, " is not the bridge's state"));
    }
  }
  return std::unique_ptr<TelegramBridge>(new TelegramBridge(
      options, std::move(mesh), *token, secret, std::move(users), std::move(state)));
}

TelegramBridge::TelegramBridge(Options options, Upstreams mesh, std::string bot_token,
                               std::string webhook_secret, std::map<int64_t, AllowedUser> users,
                               telegram::BridgeState state)
    : options_(std::move(options)),
      mesh_(std::move(mesh)),
      webhook_secret_(std::move(webhook_secret)),
      users_(std::move(users)),
      bot_(options_.api_base, bot_token, &stopping_),
      state_(std::move(state)) {}

TelegramBridge::~TelegramBridge() { Stop(); }

void TelegramBridge::Start() {
  Spawn([this] { options_.mode == "polling" ? PollLoop() : WebhookLoop(); });
  for (const auto& [id, user] : users_) {
    Spawn([this, user = user] { WatchNotifications(user); });
  }
  spdlog::info("telegram bridge started mode={} users={}", options_.mode, users_.size());
}

void TelegramBridge::Stop() {
  if (stopping_.exchange(true)) return;
  absl::MutexLock lock(&mu_);
  for (auto* c : live_calls_) c->TryCancel();
  mu_.Await(absl::Condition(
      +[](int* running) { return *running == 0; }, &running_));
}

void TelegramBridge::Spawn(std::function<void()> fn) {
  {
    absl::MutexLock lock(&mu_);
    ++running_;
  }
  std::thread([this, fn = std::move(fn)] {
    fn();
    absl::MutexLock lock(&mu_);
    --running_;
  }).detach();
}

TelegramBridge::LiveContext::LiveContext(TelegramBridge* bridge, const AllowedUser& user,
                                         bool deadline)
    : bridge_(bridge) {
  context_.AddMetadata("authorization", "Bearer " + user.token);
  if (deadline) {
    context_.set_deadline(std::chrono::system_clock::now() + bridge_->options_.call_deadline);
  }
  absl::MutexLock lock(&bridge_->mu_);
  bridge_->live_calls_.insert(&context_);
  if (bridge_->stopping_.load()) context_.TryCancel();
}

TelegramBridge::LiveContext::~LiveContext() {
  absl::MutexLock lock(&bridge_->mu_);
  bridge_->live_calls_.erase(&context_);
}

void TelegramBridge::SaveState() {
  absl::MutexLock save(&save_mu_);
  std::string json;
  {
    absl::MutexLock lock(&state_mu_);
    google::protobuf::util::JsonPrintOptions o;
    (void)google::protobuf::util::MessageToJsonString(state_, &json, o);
  }
  // Written whole, then renamed over the old one: a crash leaves one or the other.
  const std::string tmp = options_.state_file + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr || std::fwrite(json.data(), 1, json.size(), f) != json.size() ||
      std::fflush(f) != 0 || fsync(fileno(f)) != 0) {
    spdlog::error("telegram state: cannot write {}", tmp);
    if (f != nullptr) std::fclose(f);
    return;
  }
  std::fclose(f);
  if (std::rename(tmp.c_str(), options_.state_file.c_str()) != 0) {
    spdlog::error("telegram state: cannot replace {}", options_.state_file);
  }
}

void TelegramBridge::PollLoop() {
  int backoff_ms = 500;
  while (!stopping_.load()) {
    int64_t offset;
    {
      absl::MutexLock lock(&state_mu_);
      offset = state_.next_update_id();
    }
    auto updates = bot_.GetUpdates(offset, options_.poll_timeout_seconds);
    if (!updates.ok()) {
      if (stopping_.load()) break;
      spdlog::warn("telegram getUpdates failed: {}", updates.status().ToString());
      absl::SleepFor(absl::Milliseconds(backoff_ms));
      backoff_ms = std::min(backoff_ms * 2, 10'000);
      continue;
    }
    backoff_ms = 500;
    for (const auto& update : *updates) {
      if (stopping_.load()) break;
      if (update.update_id() < offset) continue;
      if (!HandleUpdate(update)) break;  // cut short by Stop: Telegram sends it again
      {
        absl::MutexLock lock(&state_mu_);
        state_.set_next_update_id(update.update_id() + 1);
      }
      SaveState();
    }
  }
}

void TelegramBridge::HandleWebhook(http::HttpRequest request,
                                   std::shared_ptr<http::Exchange> exchange) {
  if (request.method() != boost::beast::http::verb::post) {
    return exchange->Reply(405, "application/json",
                           ErrorJson(absl::FailedPreconditionError("use POST")),
                           {{"allow", "POST"}});
  }
  const auto header = request["x-telegram-bot-api-secret-token"];
  if (!ConstantTimeEquals(absl::string_view(header.data(), header.size()), webhook_secret_)) {
    spdlog::warn("telegram webhook: refused a request without the right secret");
    return exchange->Reply(401, "application/json",
                           ErrorJson(absl::UnauthenticatedError(
                               "X-Telegram-Bot-Api-Secret-Token is missing or wrong")));
  }
  if (!IsValidUtf8(request.body())) {
    return exchange->Reply(400, "application/json",
                           ErrorJson(absl::InvalidArgumentError("body: not valid UTF-8")));
  }
  auto update = telegram::ParseUpdate(request.body());
  if (!update.ok()) {
    return exchange->Reply(400, "application/json", ErrorJson(update.status()));
  }
  // Answered once handled: Telegram sends it again if the gateway dies first.
  absl::MutexLock lock(&mu_);
  if (stopping_.load()) {
    return exchange->Reply(503, "application/json",
                           ErrorJson(absl::UnavailableError("shutting down; send it again")));
  }
  if (!recent_updates_.insert(update->update_id()).second) {
    // Taken already (Telegram thought it lost): once is enough.
    return exchange->Reply(200, "application/json", "{\"ok\":true}");
  }
  recent_order_.push_back(update->update_id());
  if (recent_order_.size() > 4096) {
    recent_updates_.erase(recent_order_.front());
    recent_order_.pop_front();
  }
  webhook_queue_.push_back(Pending{
      *std::move(update), [exchange] { exchange->Reply(200, "application/json", "{\"ok\":true}"); },
      [exchange] {
        exchange->Reply(503, "application/json",
                        ErrorJson(absl::UnavailableError("shutting down; send it again")));
      }});
}

void TelegramBridge::WebhookLoop() {
  while (true) {
    Pending next;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(
          absl::Condition(
              +[](std::deque<Pending>* q) { return !q->empty(); }, &webhook_queue_),
          absl::Milliseconds(200));
      if (stopping_.load()) {
        for (auto& p : webhook_queue_) p.refuse();
        webhook_queue_.clear();
        return;
      }
      if (webhook_queue_.empty()) continue;
      next = std::move(webhook_queue_.front());
      webhook_queue_.pop_front();
    }
    if (HandleUpdate(next.update)) {
      next.done();
    } else {
      next.refuse();
    }
  }
}

bool TelegramBridge::HandleUpdate(const telegram::Update& update) {
  if (update.has_message()) return OnMessage(update.update_id(), update.message());
  if (update.has_callback_query()) {
    OnCallback(update.callback_query());
    return true;
  }
  spdlog::debug("telegram update {} ignored: neither a message nor a callback", update.update_id());
  return true;
}

bool TelegramBridge::Say(int64_t chat_id, const std::string& text,
                         const google::protobuf::RepeatedPtrField<std::string>& choices) {
  const std::vector<std::string> parts = telegram::SplitMessage(text);
  for (size_t i = 0; i < parts.size(); ++i) {
    telegram::Keyboard keyboard;
    if (i + 1 == parts.size()) {
      // One button a row, each under the whole answer.
      for (const std::string& choice : choices) {
        keyboard.push_back({telegram::Button{choice, absl::StrCat(kSayPrefix, choice)}});
      }
    }
    if (auto id = bot_.SendMessage(chat_id, EscapeHtml(parts[i]), keyboard); !id.ok()) {
      spdlog::warn("telegram sendMessage to chat {} failed: {}", chat_id, id.status().ToString());
      return false;
    }
  }
  return true;
}

bool TelegramBridge::OnMessage(int64_t update_id, const telegram::Message& message) {
  const int64_t chat_id = message.chat().id();
  const auto user = users_.find(message.from().id());
  // An answer Telegram refuses is logged, not retried: the update is handled.
  if (user == users_.end()) {
    spdlog::info("telegram: refused user {} (not on the allowlist)", message.from().id());
    Say(chat_id, absl::StrCat("Sorry, this bot only works for its team. If you should be on it, "
                              "ask an admin to add your Telegram id ",
                              message.from().id(), "."));
    return true;
  }
  if (message.text().empty()) {
    Say(chat_id, "I can only read text messages.");
    return true;
  }
  const auto [command, argument] = telegram::ParseCommand(message.text());
  if (command.empty()) {
    return StartTurn(user->second, chat_id, absl::StrCat("telegram-", update_id), message.text());
  }
  if (command == "start" || command == "help") {
    Say(chat_id, kHelp);
  } else if (command == "projects") {
    Say(chat_id, ProjectsText(user->second));
  } else if (command == "status") {
    Say(chat_id, StatusText(user->second));
  } else if (command == "cancel") {
    AskCancel(user->second, chat_id, argument);
  } else {
    Say(chat_id, absl::StrCat("I don't know /", command, ". Try /help."));
  }
  return !stopping_.load();
}

bool TelegramBridge::StartTurn(const AllowedUser& user, int64_t chat_id,
                               const std::string& request_id, const std::string& text) {
  struct Turn {
    absl::Mutex mu;
    bool accepted = false;
    bool settled = false;  // accepted, or failed before
    bool finished = false;
  };
  auto turn = std::make_shared<Turn>();
  Spawn([this, user, chat_id, request_id, text, turn] {
    // Typing shows until the turn ends.
    Spawn([this, chat_id, turn] {
      while (!stopping_.load()) {
        (void)bot_.SendChatAction(chat_id, "typing");
        absl::MutexLock lock(&turn->mu);
        if (turn->mu.AwaitWithTimeout(absl::Condition(&turn->finished),
                                      absl::FromChrono(options_.typing_interval))) {
          return;
        }
      }
    });
    sessions::SendMessageRequest request;
    request.set_text(text);
    request.set_request_id(request_id);
    grpc::Status status;
    std::vector<sessions::SessionMessage> replies;  // everything the agent said, in order
    // A retry attaches to the same turn and hears its replies from the
    // start again: each is kept once, by its message id.
    std::set<std::string> heard;
    for (int attempt = 0; attempt < 4 && !stopping_.load(); ++attempt) {
      auto context = Context(user, false);
      auto stub = Stub<sessions::SessionService>();
      auto reader = stub->SendMessage(context.get(), request);
      sessions::SendMessageResponse response;
      while (reader->Read(&response)) {
        if (response.has_accepted()) {
          absl::MutexLock lock(&turn->mu);
          turn->accepted = turn->settled = true;
        } else if (response.has_reply() &&
                   (response.reply().id().empty() || heard.insert(response.reply().id()).second)) {
          replies.push_back(response.reply());
        }
      }
      status = reader->Finish();
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE) break;
      absl::SleepFor(absl::Milliseconds(500 << attempt));
    }
    {
      absl::MutexLock lock(&turn->mu);
      turn->settled = turn->finished = true;
    }
    if (stopping_.load()) return;
    for (const auto& reply : replies) {
      if (!reply.text().empty()) Say(chat_id, reply.text(), reply.choices());
    }
    if (!status.ok()) {
      Say(chat_id, absl::StrCat("Your message could not be handled: ", status.error_message()));
    }
  });
  // The update counts as handled once its session has stored the message.
  absl::MutexLock lock(&turn->mu);
  turn->mu.AwaitWithTimeout(absl::Condition(&turn->settled), absl::Seconds(60));
  return turn->accepted || !stopping_.load();
}

std::string TelegramBridge::ProjectsText(const AllowedUser& user) {
  projects::ListProjectsRequest request;
  request.set_page_size(20);
  projects::ListProjectsResponse response;
  auto context = Context(user, true);
  auto status = Stub<projects::ProjectService>()->ListProjects(context.get(), request, &response);
  if (!status.ok()) return absl::StrCat("Could not list your projects: ", status.error_message());
  if (response.projects().empty()) return "You have no projects yet. Tell me what to build!";
  std::string text = "Your projects:\n";
  for (const auto& p : response.projects()) {
    absl::StrAppend(&text, "• ", p.name(), " (",
                    EnumLabel(projects::ProjectStatus_Name(p.status()), "PROJECT_STATUS_"), ") – ",
                    p.id(), "\n");
  }
  if (!response.next_page_token().empty()) text += "…and more.\n";
  return text;
}

std::string TelegramBridge::StatusText(const AllowedUser& user) {
  std::string text;
  {
    sessions::ListSessionsRequest request;
    request.set_page_size(1);
    sessions::ListSessionsResponse response;
    auto context = Context(user, true);
    auto status = Stub<sessions::SessionService>()->ListSessions(context.get(), request, &response);
    if (!status.ok()) return absl::StrCat("Could not read your session: ", status.error_message());
    if (response.sessions().empty()) {
      text = "No session yet: your first message starts one.\n";
    } else {
      text = absl::StrCat(
          "Session ", response.sessions(0).id(), ": ",
          EnumLabel(sessions::SessionState_Name(response.sessions(0).state()), "SESSION_STATE_"),
          "\n");
    }
  }
  int shown = 0;
  for (auto state : {jobs::JOB_STATE_RUNNING, jobs::JOB_STATE_QUEUED}) {
    jobs::ListJobsRequest request;
    request.set_page_size(10);
    request.set_state(state);
    jobs::ListJobsResponse response;
    auto context = Context(user, true);
    if (!Stub<jobs::JobService>()->ListJobs(context.get(), request, &response).ok()) {
      continue;
    }
    for (const auto& j : response.jobs()) {
      absl::StrAppend(&text, shown++ == 0 ? "Jobs:\n" : "", "• ", j.kind(), " ",
                      JobStateName(j.state()), " – ", j.id(), "\n");
    }
  }
  if (shown == 0) text += "No jobs running.\n";
  return text;
}

void TelegramBridge::AskCancel(const AllowedUser& user, int64_t chat_id,
                               const std::string& job_id) {
  if (job_id.empty()) {
    // Offer the running jobs as buttons.
    jobs::ListJobsRequest request;
    request.set_page_size(8);
    request.set_state(jobs::JOB_STATE_RUNNING);
    jobs::ListJobsResponse response;
    auto context = Context(user, true);
    auto status = Stub<jobs::JobService>()->ListJobs(context.get(), request, &response);
    if (!status.ok())
      return (void)Say(chat_id, absl::StrCat("Could not list jobs: ", status.error_message()));
    if (response.jobs().empty()) return (void)Say(chat_id, "No jobs running: nothing to cancel.");
    telegram::Keyboard keyboard;
    for (const auto& j : response.jobs()) {
      keyboard.push_back({Button{absl::StrCat(j.kind(), " ", j.id().substr(0, 8)),
                                 absl::StrCat("cancel?:", j.id())}});
    }
    (void)bot_.SendMessage(chat_id, "Which job should I cancel?", keyboard);
    return;
  }
  jobs::GetJobRequest request;
  request.set_job_id(job_id);
  jobs::GetJobResponse response;
  auto context = Context(user, true);
  auto status = Stub<jobs::JobService>()->GetJob(context.get(), request, &response);
  if (!status.ok())
    return (void)Say(chat_id, absl::StrCat("No such job: ", status.error_message()));
  (void)bot_.SendMessage(chat_id,
                         EscapeHtml(absl::StrCat("Cancel job ", job_id, " (", response.job().kind(),
                                                 ", ", JobStateName(response.job().state()), ")?")),
                         {{Button{"Yes, cancel it", absl::StrCat("cancel!:", job_id)},
                           Button{"No, keep it", absl::StrCat("keep:", job_id)}}});
}

void TelegramBridge::OnCallback(const telegram::CallbackQuery& query) {
  const auto user = users_.find(query.from().id());
  if (user == users_.end()) {
    (void)bot_.AnswerCallbackQuery(query.id(), "Sorry, this bot only works for its team.");
    return;
  }
  const int64_t chat_id = query.message().chat().id();
  const int64_t message_id = query.message().message_id();
  absl::string_view data = query.data();
  if (absl::ConsumePrefix(&data, "cancel?:")) {
    const std::string job(data);
    (void)bot_.AnswerCallbackQuery(query.id(), "");
    (void)bot_.EditMessageText(
        chat_id, message_id, EscapeHtml("Cancel job " + job + "?"),
        {{Button{"Yes, cancel it", "cancel!:" + job}, Button{"No, keep it", "keep:" + job}}});
  } else if (absl::ConsumePrefix(&data, "cancel!:")) {
    jobs::CancelJobRequest request;
    request.set_job_id(std::string(data));
    request.set_reason("cancelled from Telegram");
    request.set_request_id(absl::StrCat("telegram-callback-", query.id()));
    jobs::CancelJobResponse response;
    auto context = Context(user->second, true);
    auto status = Stub<jobs::JobService>()->CancelJob(context.get(), request, &response);
    if (!status.ok()) {
      (void)bot_.AnswerCallbackQuery(query.id(), status.error_message().substr(0, 190));
      return;
    }
    // A running job stops at its next heartbeat; say so rather than "running".
    const jobs::Job& job = response.job();
    std::string outcome;
    if (job.state() == jobs::JOB_STATE_CANCELLED) {
      outcome = absl::StrCat("Job ", data, " is cancelled.");
    } else if (job.cancel_requested() &&
               (job.state() == jobs::JOB_STATE_QUEUED || job.state() == jobs::JOB_STATE_RUNNING)) {
      outcome = absl::StrCat("Job ", data, " is being cancelled: it stops at its next step.");
    } else {
      outcome = absl::StrCat("Job ", data, " had already ended: ", JobStateName(job.state()), ".");
    }
    (void)bot_.AnswerCallbackQuery(query.id(), "Cancelled");
    (void)bot_.EditMessageText(chat_id, message_id, EscapeHtml(outcome));
  } else if (absl::ConsumePrefix(&data, kSayPrefix)) {
    // An answer the agent offered: the user's next message, in its words;
    // the buttons go (the question keeps its text and shows the pick).
    const std::string choice(data);
    (void)bot_.AnswerCallbackQuery(query.id(), "");
    (void)bot_.EditMessageText(chat_id, message_id,
                               EscapeHtml(absl::StrCat(query.message().text(), "\n\n→ ", choice)));
    // The callback's id makes a redelivered press the same turn.
    StartTurn(user->second, chat_id, absl::StrCat("telegram-callback-", query.id()), choice);
  } else if (absl::ConsumePrefix(&data, "keep:")) {
    (void)bot_.AnswerCallbackQuery(query.id(), "Kept");
    (void)bot_.EditMessageText(chat_id, message_id,
                               EscapeHtml(absl::StrCat("Job ", data, " keeps running.")));
  } else {
    (void)bot_.AnswerCallbackQuery(query.id(), "That button is no longer valid.");
  }
}

void TelegramBridge::WatchNotifications(AllowedUser user) {
  int backoff_ms = 500;
  while (!stopping_.load()) {
    sessions::WatchNotificationsRequest request;
    {
      absl::MutexLock lock(&state_mu_);
      const auto& seqs = state_.notification_sequence();
      auto it = seqs.find(user.telegram_id);
      request.set_after_sequence(it == seqs.end() ? 0 : it->second);
    }
    if (stopping_.load()) return;
    auto context = Context(user, false);
    auto reader = Stub<sessions::SessionService>()->WatchNotifications(context.get(), request);
    sessions::WatchNotificationsResponse response;
    while (reader->Read(&response)) {
      backoff_ms = 500;
      const auto& n = response.notification();
      // A private chat's id is its user's id. What Telegram did not take
      // is asked for again (from the last sequence saved) after a pause.
      if (!Say(user.telegram_id, n.text(), n.choices())) {
        context->TryCancel();
        break;
      }
      {
        absl::MutexLock lock(&state_mu_);
        (*state_.mutable_notification_sequence())[user.telegram_id] = n.sequence();
      }
      SaveState();
    }
    const grpc::Status status = reader->Finish();
    if (stopping_.load()) return;
    spdlog::warn("telegram: notifications of user {} interrupted: {}", user.telegram_id,
                 status.error_message());
    absl::SleepFor(absl::Milliseconds(backoff_ms));
    backoff_ms = std::min(backoff_ms * 2, 10'000);
  }
}

}  // namespace orchestrator::gateway
