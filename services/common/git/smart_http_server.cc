#include "services/common/git/smart_http_server.h"

#include <filesystem>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "services/common/git/git_environment.h"
#include "services/common/process/child_process.h"
#include "spdlog/spdlog.h"

namespace orchestrator::git {
namespace {

namespace fs = std::filesystem;
namespace beast_http = boost::beast::http;

constexpr char kUploadPack[] = "git-upload-pack";
constexpr char kReceivePack[] = "git-receive-pack";
constexpr char kChallenge[] = "Basic realm=\"orchestrator\"";
// A CGI answer's headers, and the body of an answer that is not a 200.
constexpr size_t kMaxCgiHead = 64 << 10;
constexpr size_t kMaxCgiErrorBody = 64 << 10;

// Who is asking: the token git sends as a Basic password (or user name
// when the password is empty) or a bearer token.
struct Caller {
  std::string user;
  std::string token;
};

std::optional<Caller> ParseAuthorization(absl::string_view header) {
  header = absl::StripAsciiWhitespace(header);
  Caller caller;
  if (header.size() > 6 && absl::EqualsIgnoreCase(header.substr(0, 6), "basic ")) {
    std::string decoded;
    if (!absl::Base64Unescape(absl::StripAsciiWhitespace(header.substr(6)), &decoded)) {
      return std::nullopt;
    }
    const size_t colon = decoded.find(':');
    if (colon == std::string::npos) return std::nullopt;
    caller.user = decoded.substr(0, colon);
    caller.token = decoded.substr(colon + 1);
    if (caller.token.empty()) caller.token = caller.user;
  } else if (header.size() > 7 && absl::EqualsIgnoreCase(header.substr(0, 7), "bearer ")) {
    caller.token = std::string(absl::StripAsciiWhitespace(header.substr(7)));
  }
  if (caller.token.empty()) return std::nullopt;
  return caller;
}

// A header's value as a CGI variable: printable ASCII only, bounded.
std::string CgiValue(absl::string_view value, size_t max = 256) {
  std::string out;
  for (char c : value.substr(0, max)) {
    if (c >= 0x20 && c < 0x7f) out.push_back(c);
  }
  return out;
}

// The name git records for who pushed (its reflog): the Basic user name
// when it is a plain one.
std::string RemoteUser(const std::string& user) {
  if (user.empty() || user.size() > 64) return "git";
  for (char c : user) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-' &&
        c != '@') {
      return "git";
    }
  }
  return user;
}

absl::string_view Text(boost::beast::string_view s) {
  return absl::string_view(s.data(), s.size());
}

}  // namespace

// One request the server answers: what the backend needs and what the log
// line names.
struct GitSmartHttpServer::Request {
  http::HttpRequest http;
  std::shared_ptr<http::Exchange> exchange;
  std::string method;
  std::string repository;
  std::string service;
  std::string path_info;
  std::string query;
  std::string remote_user;
  absl::Time start;
  std::atomic<bool> decided{false};  // the Authorize callback ran

  void Answer(int status, std::string text, http::HttpHeaders headers = {}) {
    Log(status);
    exchange->Reply(status, "text/plain; charset=utf-8", std::move(text) + "\n",
                    std::move(headers));
  }
  void Log(int status) const {
    spdlog::info("git_http method={} repository={} service={} status={} latency_ms={:.3f}", method,
                 repository.empty() ? "-" : repository, service.empty() ? "-" : service, status,
                 absl::ToDoubleMilliseconds(absl::Now() - start));
  }
};

// A running `git http-backend`: how its answer's chunks are flow-controlled
// and how it is stopped.
struct GitSmartHttpServer::Backend {
  std::atomic<bool> cancel{false};
  // Guards the chunk handed to the exchange and whether anyone still waits
  // for what the backend writes.
  absl::Mutex mu;
  bool in_flight ABSL_GUARDED_BY(mu) = false;
  bool written_ok ABSL_GUARDED_BY(mu) = true;
  bool abandoned ABSL_GUARDED_BY(mu) = false;  // the client left, or Stop

  void Abandon() {
    cancel = true;
    absl::MutexLock lock(&mu);
    abandoned = true;
  }
};

GitSmartHttpServer::GitSmartHttpServer(std::string root, std::string listen_address,
                                       Authorize authorize, GitSmartHttpLimits limits)
    : root_(fs::absolute(root).lexically_normal().string()),
      listen_address_(std::move(listen_address)),
      authorize_(std::move(authorize)),
      limits_(limits) {}

GitSmartHttpServer::~GitSmartHttpServer() { Stop(); }

absl::StatusOr<int> GitSmartHttpServer::Start() {
  server_ = std::make_unique<http::HttpServer>(
      limits_.http,
      [this](http::HttpRequest request, std::shared_ptr<http::Exchange> exchange) {
        Handle(std::move(request), std::move(exchange));
      },
      http::HttpServerOptions{.server_name = "orchestrator-git", .refusal = nullptr});
  absl::StatusOr<int> port = server_->Listen(listen_address_);
  if (!port.ok()) return port.status();
  const size_t backends = static_cast<size_t>(std::max(1, limits_.max_backends));
  backends_ = std::make_unique<BoundedExecutor>(backends, backends);
  server_->Start(limits_.io_threads);
  spdlog::info("git smart HTTP serving root={} port={}", root_, *port);
  return port;
}

void GitSmartHttpServer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (const auto& backend : running_) backend->Abandon();
    auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return authorizing_ == 0 && running_.empty();
    };
    mu_.Await(absl::Condition(&drained));
  }
  if (server_) server_->Shutdown(std::chrono::seconds(1));
  backends_.reset();
}

void GitSmartHttpServer::Handle(http::HttpRequest http_request,
                                std::shared_ptr<http::Exchange> exchange) {
  auto request = std::make_shared<Request>();
  request->start = absl::Now();
  request->method = std::string(Text(http_request.method_string()));
  request->exchange = std::move(exchange);
  const absl::string_view target = Text(http_request.target());
  const size_t question = target.find('?');
  const absl::string_view path = target.substr(0, question);
  const absl::string_view query =
      question == absl::string_view::npos ? absl::string_view() : target.substr(question + 1);
  const auto verb = http_request.method();

  if (path == "/healthz" && (verb == beast_http::verb::get || verb == beast_http::verb::head)) {
    return request->Answer(200, "ok");
  }
  // /git/<name>.git/<what>, and only what git's smart protocol asks for.
  absl::string_view rest = path;
  if (!absl::ConsumePrefix(&rest, "/git/")) return request->Answer(404, "not found");
  const size_t dot_git = rest.find(".git/");
  if (dot_git == absl::string_view::npos) return request->Answer(404, "not found");
  const absl::string_view name = rest.substr(0, dot_git);
  const absl::string_view what = rest.substr(dot_git + 5);
  if (!ValidateRepositoryName(name).ok()) return request->Answer(404, "not found");
  if (what == "info/refs" && verb == beast_http::verb::get) {
    if (query == "service=git-upload-pack") request->service = kUploadPack;
    if (query == "service=git-receive-pack") request->service = kReceivePack;
  } else if ((what == kUploadPack || what == kReceivePack) && verb == beast_http::verb::post &&
             query.empty()) {
    request->service = std::string(what);
  }
  if (request->service.empty()) return request->Answer(404, "not found");
  request->repository = std::string(name);
  request->path_info = absl::StrCat("/", name, ".git/", what);
  request->query = std::string(query);

  const std::optional<Caller> caller =
      ParseAuthorization(Text(http_request[beast_http::field::authorization]));
  if (!caller) {
    return request->Answer(401, "credentials required", {{"WWW-Authenticate", kChallenge}});
  }
  request->remote_user = RemoteUser(caller->user);
  request->http = std::move(http_request);
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return request->Answer(503, "shutting down");
    ++authorizing_;
  }
  const bool write = request->service == kReceivePack;
  authorize_(request->repository, caller->token, write,
             [this, request](absl::Status status) { Authorized(request, std::move(status)); });
}

void GitSmartHttpServer::Authorized(std::shared_ptr<Request> request, absl::Status status) {
  if (request->decided.exchange(true)) return;  // a second answer from Authorize
  std::optional<std::pair<int, std::string>> refusal;
  switch (status.code()) {
    case absl::StatusCode::kOk:
      break;
    case absl::StatusCode::kUnauthenticated:
      refusal = {401, "credentials not accepted"};
      break;
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kPermissionDenied:
      refusal = {404, "not found"};
      break;
    case absl::StatusCode::kFailedPrecondition:  // seen, but not for this caller to do
      refusal = {403, std::string(status.message())};
      break;
    case absl::StatusCode::kUnavailable:
      refusal = {503, "authorization unavailable, retry later"};
      break;
    default:
      refusal = {500,
                 absl::StrCat("authorization failed: ", absl::StatusCodeToString(status.code()))};
      break;
  }
  std::error_code ec;
  if (!refusal && !fs::is_directory(absl::StrCat(root_, "/", request->repository, ".git"), ec)) {
    refusal = {404, "not found"};
  }
  auto backend = std::make_shared<Backend>();
  if (!refusal) {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      refusal = {503, "shutting down"};
    } else if (running_.size() >= static_cast<size_t>(limits_.max_backends)) {
      refusal = {503, "too many git requests at once, retry later"};
    } else {
      running_.insert(backend);
    }
  }
  if (refusal) {
    http::HttpHeaders headers;
    if (refusal->first == 401) headers.emplace_back("WWW-Authenticate", kChallenge);
    if (refusal->first == 503) headers.emplace_back("Retry-After", "1");
    request->Answer(refusal->first, refusal->second, std::move(headers));
    absl::MutexLock lock(&mu_);
    --authorizing_;
    return;
  }
  request->exchange->OnAbort([backend] { backend->Abandon(); });
  absl::Status queued =
      backends_->Submit([this, request, backend] { RunBackend(request, backend); });
  absl::MutexLock lock(&mu_);
  --authorizing_;
  if (!queued.ok()) {  // never: running_ bounds the queue
    running_.erase(backend);
    request->Answer(503, "too many git requests at once, retry later", {{"Retry-After", "1"}});
  }
}

bool GitSmartHttpServer::AwaitWritten(Backend& backend) {
  absl::MutexLock lock(&backend.mu);
  auto settled = [&backend]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(backend.mu) {
    return !backend.in_flight || backend.abandoned;
  };
  backend.mu.Await(absl::Condition(&settled));
  return !backend.abandoned && backend.written_ok;
}

void GitSmartHttpServer::RunBackend(std::shared_ptr<Request> request,
                                    std::shared_ptr<Backend> backend) {
  if (backend->cancel.load()) {  // stopped while it waited for a thread
    request->Answer(503, "shutting down");
    absl::MutexLock lock(&mu_);
    running_.erase(backend);
    return;
  }
  const auto& http_request = request->http;
  ChildCommand command;
  command.argv = {"git", "http-backend"};
  command.inherit_environment = false;
  command.env = CleanGitEnvironment();
  command.env["GIT_PROJECT_ROOT"] = root_;
  // Authorize said who may push: the repositories need no config of their own.
  AddGitConfig(command.env, "http.receivepack", "true");
  command.env["GIT_HTTP_EXPORT_ALL"] = "1";
  command.env["GIT_HTTP_MAX_REQUEST_BUFFER"] = absl::StrCat(limits_.http.max_body_bytes);
  command.env["PATH_INFO"] = request->path_info;
  command.env["QUERY_STRING"] = request->query;
  command.env["REQUEST_METHOD"] = request->method;
  command.env["REMOTE_USER"] = request->remote_user;
  command.env["GATEWAY_INTERFACE"] = "CGI/1.1";
  command.env["SERVER_PROTOCOL"] = "HTTP/1.1";
  const std::string content_type = CgiValue(Text(http_request[beast_http::field::content_type]));
  if (!content_type.empty()) command.env["CONTENT_TYPE"] = content_type;
  const std::string encoding = CgiValue(Text(http_request[beast_http::field::content_encoding]));
  if (!encoding.empty()) command.env["HTTP_CONTENT_ENCODING"] = encoding;
  // Protocol v2 ("version=2"), which git asks for in this header.
  const std::string protocol = CgiValue(Text(http_request["Git-Protocol"]));
  if (!protocol.empty()) command.env["HTTP_GIT_PROTOCOL"] = protocol;
  if (http_request.method() == beast_http::verb::post) {
    command.env["CONTENT_LENGTH"] = absl::StrCat(http_request.body().size());
    command.stdin_bytes = http_request.body();
  }
  command.cwd = root_;
  command.deadline = absl::Now() + limits_.backend_timeout;
  command.cancel = &backend->cancel;

  // The CGI answer: headers (with "Status:") up to a blank line, then the
  // body, streamed for a 200 and collected (bounded) otherwise.
  std::string head;
  bool head_done = false, streaming = false;
  int status = 200;
  std::string reply_type = "application/octet-stream";
  http::HttpHeaders headers;
  std::string error_body;
  auto send = [&](std::string chunk) {
    if (chunk.empty()) return;
    {
      absl::MutexLock lock(&backend->mu);
      backend->in_flight = true;
    }
    request->exchange->Send(std::move(chunk), [backend](bool ok) {
      absl::MutexLock lock(&backend->mu);
      backend->in_flight = false;
      backend->written_ok = ok;
    });
    if (!AwaitWritten(*backend)) backend->cancel = true;  // no one reads it any more
  };
  auto parse_head = [&](absl::string_view text) {
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      line = absl::StripTrailingAsciiWhitespace(line);
      const size_t colon = line.find(':');
      if (colon == absl::string_view::npos) continue;
      const absl::string_view key = absl::StripAsciiWhitespace(line.substr(0, colon));
      const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
      if (absl::EqualsIgnoreCase(key, "Status")) {
        if (!absl::SimpleAtoi(value.substr(0, value.find(' ')), &status) || status < 100 ||
            status > 599) {
          status = 502;
        }
      } else if (absl::EqualsIgnoreCase(key, "Content-Type")) {
        reply_type = std::string(value);
      } else if (!absl::EqualsIgnoreCase(key, "Content-Length") &&
                 !absl::EqualsIgnoreCase(key, "Transfer-Encoding") &&
                 !absl::EqualsIgnoreCase(key, "Connection")) {
        headers.emplace_back(std::string(key), std::string(value));
      }
    }
  };
  command.on_output = [&](absl::string_view bytes) {
    if (head_done) {
      if (streaming) return send(std::string(bytes));
      if (error_body.size() < kMaxCgiErrorBody) {
        error_body.append(bytes.data(),
                          std::min(bytes.size(), kMaxCgiErrorBody - error_body.size()));
      }
      return;
    }
    head.append(bytes.data(), bytes.size());
    size_t end = head.find("\r\n\r\n");
    size_t skip = 4;
    if (const size_t lf = head.find("\n\n"); lf != std::string::npos && lf < end) {
      end = lf;
      skip = 2;
    }
    if (end == std::string::npos) {
      if (head.size() > kMaxCgiHead) backend->cancel = true;
      return;
    }
    head_done = true;
    parse_head(absl::string_view(head).substr(0, end));
    std::string body = head.substr(end + skip);
    if (status == 200) {
      streaming = true;
      request->exchange->StartStream(reply_type, headers);
      send(std::move(body));
    } else {
      error_body = body.substr(0, kMaxCgiErrorBody);
    }
  };

  backends_started_.fetch_add(1);
  absl::StatusOr<ChildExit> exit = RunChild(command);
  const bool failed = !exit.ok() || exit->exit_code != 0 || exit->timed_out;
  if (failed && !backend->cancel.load()) {
    spdlog::warn("git_http backend failed repository={} service={} exit={} stderr={}",
                 request->repository, request->service, exit.ok() ? exit->exit_code : -1,
                 exit.ok() ? std::string(absl::StripAsciiWhitespace(exit->stderr_tail))
                           : exit.status().ToString());
  }
  if (streaming) {
    request->exchange->End();
    request->Log(200);
  } else if (head_done) {
    request->Log(status);
    request->exchange->Reply(status, reply_type, std::move(error_body), std::move(headers));
  } else if (exit.ok() && exit->timed_out) {
    request->Answer(503, "the git backend ran out of time");
  } else {
    request->Answer(500, "the git backend failed");
  }
  absl::MutexLock lock(&mu_);
  running_.erase(backend);
}

}  // namespace orchestrator::git
