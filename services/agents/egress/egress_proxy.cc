#include "services/agents/egress/egress_proxy.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <optional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "services/agents/egress/relay.h"
#include "spdlog/spdlog.h"

namespace orchestrator::agents {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using local = asio::local::stream_protocol;
using boost::system::error_code;

constexpr size_t kMaxHead = 16 * 1024;      // a request head; a chunked body's trailers
constexpr size_t kMaxChunkLine = 4 * 1024;  // a chunk-size line, extensions included
constexpr size_t kMaxChunkSizeDigits = 15;  // < 2^60 bytes
constexpr size_t kMaxLengthDigits = 18;     // a Content-Length < 10^18 bytes

// Whether `a` is an address on the public internet: not loopback, private,
// link-local, shared (CGNAT), multicast, reserved or unspecified.
bool IsPublic(const asio::ip::address& a) {
  if (a.is_v6()) {
    const auto v6 = a.to_v6();
    if (v6.is_v4_mapped()) return IsPublic(asio::ip::make_address_v4(asio::ip::v4_mapped, v6));
    const auto b = v6.to_bytes();
    if (v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() || v6.is_link_local() ||
        v6.is_site_local()) {
      return false;
    }
    if ((b[0] & 0xfe) == 0xfc) return false;  // fc00::/7, unique local
    // ::a.b.c.d (deprecated v4-compatible) and 64:ff9b::/96 (NAT64) reach v4.
    bool zero96 = true;
    for (int i = 0; i < 12; ++i) zero96 = zero96 && b[i] == 0;
    const bool nat64 = b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b;
    if (zero96 || nat64) {
      return IsPublic(asio::ip::address_v4({b[12], b[13], b[14], b[15]}));
    }
    return true;
  }
  const auto b = a.to_v4().to_bytes();
  return !(b[0] == 0 || b[0] == 10 || b[0] == 127 || b[0] >= 224 ||
           (b[0] == 100 && (b[1] & 0xc0) == 64) || (b[0] == 169 && b[1] == 254) ||
           (b[0] == 172 && (b[1] & 0xf0) == 16) || (b[0] == 192 && b[1] == 168) ||
           (b[0] == 192 && b[1] == 0 && b[2] == 0) || (b[0] == 198 && (b[1] & 0xfe) == 18));
}

bool IsMethod(absl::string_view m) {
  return !m.empty() && m.size() <= 16 &&
         std::all_of(m.begin(), m.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

// Whether `text` has a byte a header line never has: CR or LF (a bare one,
// once the head is split at CRLF), NUL or another control but HTAB, DEL.
bool HasControl(absl::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && u != '\t') || u == 0x7f;
  });
}

bool IsTokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::string_view("!#$%&'*+-.^_`|~").find(c) != absl::string_view::npos;
}

// `name: value` with a token name (no whitespace before the colon, no
// obs-fold continuation) and no control bytes: what every server reads the
// same way.
bool IsHeaderLine(absl::string_view line) {
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos || colon == 0 || HasControl(line)) return false;
  return std::all_of(line.begin(), line.begin() + colon, IsTokenChar);
}

// The framing of one request's body, for a plain-HTTP request: how many of
// the bytes that follow the head belong to the request (they are forwarded)
// before it ends (what comes after is another request, never forwarded).
// A chunked body is checked as it goes; its state is bounded (a chunk-size
// line at most kMaxChunkLine, trailers at most kMaxHead).
class BodyFramer {
 public:
  void SetLength(uint64_t n) {
    mode_ = n > 0 ? kLength : kDone;
    left_ = n;
  }
  void SetChunked() { mode_ = kSize; }
  bool done() const { return mode_ == kDone; }

  // How many of the `n` bytes at `p` belong to the body; nullopt if the body
  // is malformed.
  std::optional<size_t> Take(const char* p, size_t n) {
    size_t i = 0;
    while (i < n && mode_ != kDone) {
      if (mode_ == kLength || mode_ == kData) {
        const size_t k = static_cast<size_t>(std::min<uint64_t>(left_, n - i));
        i += k;
        left_ -= k;
        if (left_ == 0) mode_ = mode_ == kLength ? kDone : kDataEnd;
        continue;
      }
      if (line_.size() >= kMaxChunkLine) return std::nullopt;
      line_.push_back(p[i++]);
      if (line_.back() == '\n' && !EndLine()) return std::nullopt;
    }
    return i;
  }

 private:
  enum Mode { kDone, kLength, kSize, kData, kDataEnd, kTrailer };

  // line_ ends with LF.
  bool EndLine() {
    if (line_.size() < 2 || line_[line_.size() - 2] != '\r') return false;  // a bare LF
    const absl::string_view text(line_.data(), line_.size() - 2);
    if (HasControl(text)) return false;
    switch (mode_) {
      case kDataEnd:  // the CRLF after a chunk's data
        if (!text.empty()) return false;
        mode_ = kSize;
        break;
      case kSize: {  // 1*HEXDIG [ BWS ";" chunk-ext ]
        size_t j = 0;
        uint64_t size = 0;
        for (; j < text.size() && absl::ascii_isxdigit(static_cast<unsigned char>(text[j])); ++j) {
          if (j == kMaxChunkSizeDigits) return false;
          const char c = absl::ascii_tolower(static_cast<unsigned char>(text[j]));
          size = size * 16 + static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
        }
        if (j == 0) return false;
        const absl::string_view ext = absl::StripLeadingAsciiWhitespace(text.substr(j));
        if (!ext.empty() && ext[0] != ';') return false;
        left_ = size;
        mode_ = size > 0 ? kData : kTrailer;
        break;
      }
      case kTrailer:
        trailers_ += line_.size();
        if (trailers_ > kMaxHead) return false;
        if (text.empty()) {
          mode_ = kDone;
        } else if (!IsHeaderLine(text)) {
          return false;
        }
        break;
      default:
        return false;
    }
    line_.clear();
    return true;
  }

  Mode mode_ = kDone;
  uint64_t left_ = 0;  // of the body (kLength) or of the chunk (kData)
  std::string line_;   // the chunk-size or trailer line so far
  size_t trailers_ = 0;
};

struct Listener;

// One connection from a sandbox: its request head, the decision, then the
// bytes both ways until both sides are done. Lives on the io thread only.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<Listener> listener, local::socket client);
  void Start();
  void Stop();

 private:
  void ReadHead();
  void OnHead(size_t head_end);
  void Answer(int code, absl::string_view reason);
  void Refuse(int code, const std::string& target, absl::string_view why);
  void Connect(const tcp::resolver::results_type& results);
  void Connected();
  // For a plain-HTTP request: the rest of its body, client → upstream; then
  // the client's bytes are read and dropped until it ends.
  void RelayBody(std::function<void(bool clean)> ended);
  void Dropped();  // logs (once) that the client sent more than one request

  std::weak_ptr<Listener> listener_;
  std::string worker_id_;
  const EgressProxyOptions* options_;
  local::socket client_;
  tcp::socket upstream_;
  tcp::resolver resolver_;
  asio::steady_timer timer_;
  std::string head_;
  std::string send_first_;  // what goes upstream before the relay
  bool tunnel_ = false;
  BodyFramer body_;       // plain HTTP: what of the client's bytes is the request
  bool dropped_ = false;  // plain HTTP: bytes after the request were dropped
  EgressTarget target_;
  bool public_only_ = false;
  bool stopped_ = false;
  int relay_ends_ = 0;  // directions that ended cleanly
  RelayBuffer up_{}, down_{};
};

struct Listener {
  std::string worker_id;
  std::string path;
  EgressAllowlist allow;
  const EgressProxyOptions* options;
  local::acceptor acceptor;
  std::map<Session*, std::weak_ptr<Session>> sessions;

  asio::steady_timer backoff;  // after a failed accept (e.g. out of descriptors)

  Listener(asio::io_context& io, const EgressProxyOptions* o)
      : options(o), acceptor(io), backoff(io) {}

  void Accept(const std::shared_ptr<Listener>& self) {
    acceptor.async_accept([self](error_code ec, local::socket client) {
      if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
      if (ec) {
        spdlog::warn("egress worker={}: accept failed: {}", self->worker_id, ec.message());
        self->backoff.expires_after(std::chrono::milliseconds(100));
        self->backoff.async_wait([self](error_code e) {
          if (!e && self->acceptor.is_open()) self->Accept(self);
        });
        return;
      }
      {
        if (static_cast<int>(self->sessions.size()) >= self->options->max_connections_per_worker) {
          spdlog::info("egress worker={} target=- refused: more than {} connections at once",
                       self->worker_id, self->options->max_connections_per_worker);
        } else {
          auto session = std::make_shared<Session>(self, std::move(client));
          self->sessions[session.get()] = session;
          session->Start();
        }
      }
      self->Accept(self);
    });
  }

  void CloseAll() {
    error_code ignored;
    acceptor.close(ignored);
    backoff.cancel();
    auto all = std::move(sessions);
    sessions.clear();
    for (auto& [raw, weak] : all) {
      if (auto s = weak.lock()) s->Stop();
    }
    ::unlink(path.c_str());
  }
};

Session::Session(std::shared_ptr<Listener> listener, local::socket client)
    : listener_(listener),
      worker_id_(listener->worker_id),
      options_(listener->options),
      client_(std::move(client)),
      upstream_(client_.get_executor()),
      resolver_(client_.get_executor()),
      timer_(client_.get_executor()) {}

void Session::Start() {
  timer_.expires_after(absl::ToChronoMilliseconds(options_->header_timeout));
  timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (!ec) self->Stop();  // no request head in time
  });
  ReadHead();
}

void Session::Stop() {
  if (stopped_) return;
  stopped_ = true;
  error_code ignored;
  timer_.cancel();
  resolver_.cancel();
  client_.close(ignored);
  upstream_.close(ignored);
  if (auto l = listener_.lock()) l->sessions.erase(this);
}

void Session::ReadHead() {
  auto self = shared_from_this();
  client_.async_read_some(asio::buffer(up_), [self](error_code ec, size_t n) {
    if (ec || self->stopped_) return self->Stop();
    const size_t from = self->head_.size() > 3 ? self->head_.size() - 3 : 0;
    self->head_.append(self->up_.data(), n);
    const size_t end = self->head_.find("\r\n\r\n", from);
    if (end != std::string::npos && end + 4 <= kMaxHead) return self->OnHead(end + 4);
    if (self->head_.size() > kMaxHead) {
      return self->Refuse(431, "-", "the request head is too large");
    }
    self->ReadHead();
  });
}

void Session::Answer(int code, absl::string_view reason) {
  auto text = std::make_shared<std::string>(absl::StrCat(
      "HTTP/1.1 ", code, " ", reason, "\r\nContent-Type: text/plain\r\nContent-Length: ",
      reason.size() + 1, "\r\nConnection: close\r\n\r\n", reason, "\n"));
  asio::async_write(client_, asio::buffer(*text),
                    [self = shared_from_this(), text](error_code, size_t) {
                      error_code ignored;
                      self->client_.shutdown(local::socket::shutdown_send, ignored);
                      self->Stop();
                    });
}

void Session::Refuse(int code, const std::string& target, absl::string_view why) {
  spdlog::info("egress worker={} target={} refused: {}", worker_id_, target, std::string(why));
  Answer(code, code == 403   ? absl::StrCat("Forbidden: ", why)
               : code == 431 ? std::string("Request Header Fields Too Large")
                             : absl::StrCat("Bad Request: ", why));
}

void Session::OnHead(size_t head_end) {
  const std::string rest = head_.substr(head_end);
  std::vector<std::string> lines = absl::StrSplit(head_.substr(0, head_end - 4), "\r\n");
  std::vector<std::string> words = absl::StrSplit(lines[0], ' ');
  if (words.size() != 3 || !IsMethod(words[0]) || !absl::StartsWith(words[2], "HTTP/1.")) {
    return Refuse(400, "-", "not an HTTP/1.x proxy request");
  }
  const std::string& method = words[0];
  const std::string& uri = words[1];
  absl::StatusOr<EgressTarget> target;
  std::string path;
  if (method == "CONNECT") {
    tunnel_ = true;
    target = ParseEgressTarget(uri);
  } else if (absl::StartsWith(absl::AsciiStrToLower(uri.substr(0, 7)), "http://")) {
    target = EgressTargetOfUrl(uri);
    const size_t at = uri.find_first_of("/?#", 7);
    path = at == std::string::npos ? "/" : uri.substr(at);
    if (absl::StartsWith(path, "?")) path = "/" + path;
    if (absl::StartsWith(path, "#")) path = "/";
  } else {
    return Refuse(400, "-",
                  absl::StartsWith(absl::AsciiStrToLower(uri.substr(0, 8)), "https://")
                      ? "use CONNECT for https"
                      : "not a proxy request (CONNECT host:port or an absolute http:// URL)");
  }
  if (!target.ok()) return Refuse(400, "-", "the target is not host:port");
  target_ = *target;
  auto listener = listener_.lock();
  if (!listener) return Stop();
  const auto& allow = listener->allow;
  const bool any = std::find(allow.any_address.begin(), allow.any_address.end(), target_) !=
                   allow.any_address.end();
  public_only_ = !any && std::find(allow.public_only.begin(), allow.public_only.end(), target_) !=
                             allow.public_only.end();
  if (!any && !public_only_) {
    return Refuse(403, target_.ToString(), "not on the worker's allowlist");
  }
  if (tunnel_) {
    send_first_ = rest;
  } else {
    // The request in origin form, for this one request only, to the target
    // it names whatever Host the client said (a target may route by Host, or
    // be a proxy itself). Only what the head's framing says is the request's
    // body follows it: never a second, pipelined request.
    const std::string name = target_.ToString();
    if (HasControl(lines[0])) return Refuse(400, name, "a control byte in the request line");
    send_first_ =
        absl::StrCat(method, " ", path, " ", words[2], "\r\n",
                     "Host: ", target_.port == 80 ? name.substr(0, name.rfind(':')) : name, "\r\n");
    int lengths = 0, encodings = 0;
    uint64_t length = 0;
    for (size_t i = 1; i < lines.size(); ++i) {
      if (!IsHeaderLine(lines[i])) return Refuse(400, name, "a malformed header line");
      const size_t colon = lines[i].find(':');
      const std::string field = absl::AsciiStrToLower(lines[i].substr(0, colon));
      const absl::string_view value =
          absl::StripAsciiWhitespace(absl::string_view(lines[i]).substr(colon + 1));
      if (field == "content-length") {
        if (++lengths > 1 || value.empty() || value.size() > kMaxLengthDigits ||
            !std::all_of(
                value.begin(), value.end(),
                [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); }) ||
            !absl::SimpleAtoi(value, &length)) {
          return Refuse(400, name, "a bad or repeated Content-Length");
        }
      } else if (field == "transfer-encoding") {
        if (++encodings > 1 || !absl::EqualsIgnoreCase(value, "chunked")) {
          return Refuse(400, name, "a Transfer-Encoding other than one chunked");
        }
      }
      if (field == "host" || field == "proxy-connection" || field == "proxy-authorization" ||
          field == "connection" || field == "keep-alive" || field == "upgrade") {
        continue;
      }
      absl::StrAppend(&send_first_, lines[i], "\r\n");
    }
    if (lengths > 0 && encodings > 0) {
      return Refuse(400, name, "both Content-Length and Transfer-Encoding");
    }
    if (encodings > 0) {
      body_.SetChunked();
    } else {
      body_.SetLength(length);  // none: no body
    }
    const std::optional<size_t> taken = body_.Take(rest.data(), rest.size());
    if (!taken) return Refuse(400, name, "a malformed chunked body");
    if (*taken < rest.size()) Dropped();
    absl::StrAppend(&send_first_, "Connection: close\r\n\r\n",
                    absl::string_view(rest).substr(0, *taken));
  }
  timer_.expires_after(absl::ToChronoMilliseconds(options_->connect_timeout));
  timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (ec) return;
    spdlog::info("egress worker={} target={} failed: not reached within {}", self->worker_id_,
                 self->target_.ToString(), absl::FormatDuration(self->options_->connect_timeout));
    self->Answer(504, "Gateway Timeout");
    error_code ignored;
    self->upstream_.close(ignored);
    self->resolver_.cancel();
  });
  resolver_.async_resolve(
      target_.host, std::to_string(target_.port), tcp::resolver::numeric_service,
      [self = shared_from_this()](error_code ec, tcp::resolver::results_type results) {
        if (self->stopped_ || ec == asio::error::operation_aborted) return;
        if (ec) {
          self->timer_.cancel();
          spdlog::info("egress worker={} target={} failed: cannot resolve: {}", self->worker_id_,
                       self->target_.ToString(), ec.message());
          return self->Answer(502, "Bad Gateway: cannot resolve the host");
        }
        self->Connect(results);
      });
}

void Session::Connect(const tcp::resolver::results_type& results) {
  std::vector<tcp::endpoint> endpoints;
  for (const auto& r : results) {
    if (!public_only_ || IsPublic(r.endpoint().address())) endpoints.push_back(r.endpoint());
  }
  if (endpoints.empty()) {
    timer_.cancel();
    return Refuse(403, target_.ToString(), "it resolves to a non-public address");
  }
  spdlog::info("egress worker={} target={} allowed", worker_id_, target_.ToString());
  asio::async_connect(upstream_, endpoints,
                      [self = shared_from_this()](error_code ec, const tcp::endpoint&) {
                        if (self->stopped_ || ec == asio::error::operation_aborted) return;
                        self->timer_.cancel();
                        if (ec) {
                          spdlog::info("egress worker={} target={} failed: {}", self->worker_id_,
                                       self->target_.ToString(), ec.message());
                          return self->Answer(502, "Bad Gateway: the target is unreachable");
                        }
                        self->Connected();
                      });
}

void Session::Connected() {
  auto self = shared_from_this();
  auto relay = [self] {
    auto ended = [self](bool clean) {
      if (!clean || ++self->relay_ends_ == 2) self->Stop();
    };
    if (self->tunnel_) {
      Relay(self->client_, self->upstream_, self->up_, self, ended);
    } else {
      self->RelayBody(ended);
    }
    Relay(self->upstream_, self->client_, self->down_, self, ended);
  };
  auto forward = [self, relay] {
    if (self->send_first_.empty()) return relay();
    asio::async_write(self->upstream_, asio::buffer(self->send_first_),
                      [self, relay](error_code ec, size_t) {
                        if (ec || self->stopped_) return self->Stop();
                        self->send_first_.clear();
                        self->send_first_.shrink_to_fit();
                        relay();
                      });
  };
  if (!tunnel_) return forward();
  static constexpr char kEstablished[] = "HTTP/1.1 200 Connection Established\r\n\r\n";
  asio::async_write(client_, asio::buffer(kEstablished, sizeof(kEstablished) - 1),
                    [self, forward](error_code ec, size_t) {
                      if (ec || self->stopped_) return self->Stop();
                      forward();
                    });
}

void Session::Dropped() {
  if (dropped_) return;
  dropped_ = true;
  spdlog::info(
      "egress worker={} target={}: what follows the request is dropped (one request "
      "per connection)",
      worker_id_, target_.ToString());
}

void Session::RelayBody(std::function<void(bool clean)> ended) {
  auto self = shared_from_this();
  client_.async_read_some(asio::buffer(up_), [self, ended](error_code ec, size_t n) {
    if (self->stopped_) return;
    if (ec == asio::error::eof) {  // the client is done sending: so is the request
      error_code ignored;
      self->upstream_.shutdown(tcp::socket::shutdown_send, ignored);
      return ended(true);
    }
    if (ec) return ended(false);
    size_t taken = 0;
    if (!self->body_.done()) {
      const std::optional<size_t> t = self->body_.Take(self->up_.data(), n);
      if (!t) {
        spdlog::info("egress worker={} target={} ended: a malformed chunked body", self->worker_id_,
                     self->target_.ToString());
        return ended(false);
      }
      taken = *t;
    }
    if (taken < n) self->Dropped();
    if (taken == 0) return self->RelayBody(ended);  // after the request: dropped
    asio::async_write(self->upstream_, asio::buffer(self->up_.data(), taken),
                      [self, ended](error_code ec, size_t) {
                        if (ec || self->stopped_) return ended(false);
                        self->RelayBody(ended);
                      });
  });
}

bool IsSafeName(absl::string_view id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

}  // namespace

struct EgressProxy::Impl {
  EgressProxyOptions options;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread;
  // worker id → its listener; touched only on the io thread.
  std::map<std::string, std::shared_ptr<Listener>> listeners;

  // Runs `fn` on the io thread and waits for it.
  template <typename T>
  T OnIo(std::function<T()> fn) {
    if (io.get_executor().running_in_this_thread()) return fn();
    std::packaged_task<T()> task(std::move(fn));
    auto done = task.get_future();
    asio::post(io, [&task] { task(); });
    return done.get();
  }
};

EgressProxy::EgressProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<EgressProxy>> EgressProxy::Start(EgressProxyOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(options.socket_dir, ec);
  if (ec || ::chmod(options.socket_dir.c_str(), 0700) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "egress proxy: cannot create '", options.socket_dir, "': ", ec ? ec.message() : "chmod"));
  }
  // Sockets of workers that ended with an earlier process.
  for (const auto& e : std::filesystem::directory_iterator(options.socket_dir, ec)) {
    if (e.path().extension() == ".sock") std::filesystem::remove(e.path(), ec);
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<EgressProxy>(new EgressProxy(std::move(impl)));
}

EgressProxy::~EgressProxy() {
  impl_->OnIo<int>([this] {
    for (auto& [id, l] : impl_->listeners) l->CloseAll();
    impl_->listeners.clear();
    return 0;
  });
  impl_->work.reset();
  impl_->io.stop();
  impl_->thread.join();
}

absl::StatusOr<std::string> EgressProxy::Open(const std::string& worker_id, EgressAllowlist allow) {
  if (!IsSafeName(worker_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("egress proxy: bad worker id '", worker_id, "'"));
  }
  const std::string path = absl::StrCat(impl_->options.socket_dir, "/", worker_id, ".sock");
  return impl_->OnIo<absl::StatusOr<std::string>>([&]() -> absl::StatusOr<std::string> {
    if (auto it = impl_->listeners.find(worker_id); it != impl_->listeners.end()) {
      it->second->CloseAll();
      impl_->listeners.erase(it);
    }
    auto l = std::make_shared<Listener>(impl_->io, &impl_->options);
    l->worker_id = worker_id;
    l->path = path;
    l->allow = std::move(allow);
    ::unlink(path.c_str());
    error_code ec;
    l->acceptor.open(local(), ec);
    if (!ec) l->acceptor.bind(local::endpoint(path), ec);
    if (!ec) l->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (!ec && ::chmod(path.c_str(), 0600) != 0) {
      ec = error_code(errno, boost::system::system_category());
    }
    if (ec) {
      error_code ignored;
      l->acceptor.close(ignored);
      ::unlink(path.c_str());
      return absl::UnavailableError(
          absl::StrCat("egress proxy: cannot listen on '", path, "': ", ec.message()));
    }
    std::vector<std::string> names;
    for (const auto& t : l->allow.any_address) names.push_back(t.ToString());
    for (const auto& t : l->allow.public_only) names.push_back(t.ToString() + " (public)");
    spdlog::info("egress worker={} opened; allowed: {}", worker_id,
                 names.empty() ? "nothing" : absl::StrJoin(names, ", "));
    l->Accept(l);
    impl_->listeners[worker_id] = l;
    return path;
  });
}

void EgressProxy::Close(const std::string& worker_id) {
  impl_->OnIo<int>([&] {
    auto it = impl_->listeners.find(worker_id);
    if (it == impl_->listeners.end()) return 0;
    it->second->CloseAll();
    impl_->listeners.erase(it);
    spdlog::info("egress worker={} closed", worker_id);
    return 0;
  });
}

}  // namespace orchestrator::agents
