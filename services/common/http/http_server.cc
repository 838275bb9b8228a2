#include "services/common/http/http_server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <deque>
#include <mutex>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace orchestrator::http {
namespace {

namespace beast = boost::beast;
namespace beast_http = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

}  // namespace

class HttpServer::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, const HttpLimits& limits, const HttpHandler& handler,
             const HttpServerOptions& options)
      : stream_(std::move(socket)), limits_(limits), handler_(handler), options_(options) {}

  void Start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      Lock lock(self->mu_);
      self->ReadHeader();
    });
  }

  // From Shutdown: idle connections close now, a request in flight gets its
  // answer (without keep-alive), a stream is aborted.
  void Close() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      Lock lock(self->mu_);
      self->shutting_down_ = true;
      if (self->state_ == State::kReading) self->CloseSocket();
      // A stream, or a request waiting for its stream's first message.
      if (self->state_ == State::kStreaming || self->abort_) self->Abort();
    });
  }

  // The Exchange calls below take the connection's lock: the streaming ones
  // run on the strand, DoReply on whichever thread has the answer, so that
  // the answer goes out without a hand-off to an io thread. `generation`
  // tells a stale exchange (of an earlier request on this connection) apart.
  void DoReply(uint64_t generation, int status, std::string content_type, std::string body,
               HttpHeaders headers) {
    Lock lock(mu_);
    if (generation != generation_ || state_ != State::kHandling) return;
    auto res = std::make_shared<beast_http::response<beast_http::string_body>>(
        static_cast<beast_http::status>(status), version_);
    res->set(beast_http::field::content_type, content_type);
    res->set(beast_http::field::server, options_.server_name);
    for (auto& [k, v] : headers) res->set(k, v);
    res->body() = std::move(body);
    res->keep_alive(keep_alive_ && !shutting_down_);
    res->prepare_payload();
    if (head_) res->body().clear();  // HEAD: the headers of the answer, no body
    state_ = State::kWriting;
    stream_.expires_after(limits_.read_timeout);
    beast_http::async_write(stream_, *res,
                            [self = shared_from_this(), res](beast::error_code ec, size_t) {
                              Lock lock(self->mu_);
                              if (ec || !res->keep_alive()) return self->CloseSocket();
                              self->ReadHeader();
                            });
  }

  void DoStartStream(uint64_t generation, std::string content_type, HttpHeaders headers) {
    Lock lock(mu_);
    if (generation != generation_ || state_ != State::kHandling) return;
    if (shutting_down_) return Abort();
    state_ = State::kStreaming;
    auto res = std::make_shared<beast_http::response<beast_http::empty_body>>(
        beast_http::status::ok, version_);
    res->set(beast_http::field::content_type, content_type);
    res->set(beast_http::field::server, options_.server_name);
    res->set(beast_http::field::cache_control, "no-cache");
    for (auto& [k, v] : headers) res->set(k, v);
    res->chunked(true);
    res->keep_alive(false);  // the connection ends with the stream
    stream_head_ = res;
    Queue(Item{Item::kHead, {}, nullptr});
    stream_.expires_never();
    WatchForClose();
  }

  void DoSend(uint64_t generation, std::string chunk, std::function<void(bool)> written) {
    Lock lock(mu_);
    if (generation != generation_ || state_ != State::kStreaming || end_queued_) {
      if (written) written(false);
      return;
    }
    Queue(Item{Item::kChunk, std::move(chunk), std::move(written)});
  }

  void DoEnd(uint64_t generation) {
    Lock lock(mu_);
    if (generation != generation_ || state_ != State::kStreaming || end_queued_) return;
    end_queued_ = true;
    Queue(Item{Item::kLast, {}, nullptr});
  }

  void DoOnAbort(uint64_t generation, std::function<void()> abort) {
    Lock lock(mu_);
    if (generation != generation_) return;
    if (state_ == State::kClosed) {
      abort();
      return;
    }
    abort_ = std::move(abort);
  }

  net::any_io_executor executor() { return stream_.get_executor(); }

 private:
  // Recursive: a callback run under it (a stream's abort) may answer at once.
  using Lock = std::lock_guard<std::recursive_mutex>;
  enum class State { kReading, kHandling, kWriting, kStreaming, kClosed };
  struct Item {
    enum Kind { kHead, kChunk, kLast } kind;
    std::string data;
    std::function<void(bool)> written;
  };

  void ReadHeader() {
    state_ = State::kReading;
    if (shutting_down_) return CloseSocket();
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(limits_.max_header_bytes));
    parser_->body_limit(limits_.max_body_bytes);
    stream_.expires_after(limits_.idle_timeout);
    beast_http::async_read_header(stream_, buffer_, *parser_,
                                  [self = shared_from_this()](beast::error_code ec, size_t) {
                                    Lock lock(self->mu_);
                                    self->OnHeader(ec);
                                  });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    const auto& req = parser_->get();
    if (beast::iequals(req[beast_http::field::expect], "100-continue")) {
      auto cont = std::make_shared<beast_http::response<beast_http::empty_body>>(
          beast_http::status::continue_, req.version());
      stream_.expires_after(limits_.read_timeout);
      beast_http::async_write(stream_, *cont,
                              [self = shared_from_this(), cont](beast::error_code ec2, size_t) {
                                Lock lock(self->mu_);
                                if (ec2) return self->CloseSocket();
                                self->ReadBody();
                              });
      return;
    }
    ReadBody();
  }

  // The body has --read_timeout to arrive. Our own timer, because the
  // stream's would close the socket before the 408 could be written.
  void ReadBody() {
    stream_.expires_never();
    read_timed_out_ = false;
    read_timer_.expires_after(limits_.read_timeout);
    read_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      Lock lock(self->mu_);
      if (ec || self->state_ != State::kReading) return;
      self->read_timed_out_ = true;
      beast::error_code ignored;
      self->stream_.socket().cancel(ignored);
    });
    beast_http::async_read(stream_, buffer_, *parser_,
                           [self = shared_from_this()](beast::error_code ec, size_t) {
                             Lock lock(self->mu_);
                             self->read_timer_.cancel();
                             if (self->read_timed_out_) ec = beast::error::timeout;
                             if (ec) return self->OnReadError(ec);
                             self->Handle();
                           });
  }

  void OnReadError(beast::error_code ec) {
    if (ec == beast_http::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset) {
      return CloseSocket();
    }
    const bool started = parser_ && parser_->got_some();
    if (ec == beast::error::timeout) {
      if (!started) return CloseSocket();
      return Refuse(beast_http::status::request_timeout, absl::StatusCode::kDeadlineExceeded,
                    "the request did not arrive in time");
    }
    if (ec == beast_http::error::body_limit) {
      return Refuse(beast_http::status::payload_too_large, absl::StatusCode::kInvalidArgument,
                    absl::StrCat("body larger than ", limits_.max_body_bytes, " bytes"));
    }
    if (ec == beast_http::error::header_limit) {
      return Refuse(beast_http::status::request_header_fields_too_large,
                    absl::StatusCode::kInvalidArgument,
                    absl::StrCat("headers larger than ", limits_.max_header_bytes, " bytes"));
    }
    return Refuse(beast_http::status::bad_request, absl::StatusCode::kInvalidArgument,
                  absl::StrCat("malformed HTTP request: ", ec.message()));
  }

  // An answer to a request that could not be read; the connection closes.
  void Refuse(beast_http::status status, absl::StatusCode code, const std::string& message) {
    state_ = State::kHandling;
    keep_alive_ = false;
    head_ = false;
    version_ = 11;
    ++generation_;
    const absl::Status refusal(code, message);
    HttpRefusal answer = options_.refusal
                             ? options_.refusal(refusal)
                             : HttpRefusal{"text/plain; charset=utf-8", message + "\n"};
    DoReply(generation_, static_cast<int>(status), std::move(answer.content_type),
            std::move(answer.body), {});
  }

  void Handle();

  void Queue(Item item) {
    items_.push_back(std::move(item));
    if (!writing_) WriteNext();
  }

  void WriteNext() {
    if (items_.empty() || state_ == State::kClosed) {
      writing_ = false;
      return;
    }
    writing_ = true;
    auto item = std::make_shared<Item>(std::move(items_.front()));
    items_.pop_front();
    // A client that stops reading is cut off after --idle_timeout.
    write_timer_.expires_after(limits_.idle_timeout);
    write_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      Lock lock(self->mu_);
      if (!ec) self->Abort();
    });
    auto done = [self = shared_from_this(), item](beast::error_code ec, size_t) {
      Lock lock(self->mu_);
      self->write_timer_.cancel();
      if (ec) {
        if (item->written) item->written(false);
        self->Abort();
        return;
      }
      if (item->kind == Item::kLast) {
        self->abort_ = nullptr;
        return self->CloseSocket();
      }
      if (item->written) item->written(true);
      self->WriteNext();
    };
    switch (item->kind) {
      case Item::kHead: {
        auto sr = std::make_shared<beast_http::response_serializer<beast_http::empty_body>>(
            *stream_head_);
        beast_http::async_write_header(stream_, *sr,
                                       [sr, done](beast::error_code ec, size_t n) { done(ec, n); });
        break;
      }
      case Item::kChunk:
        net::async_write(stream_, beast_http::make_chunk(net::buffer(item->data)), done);
        break;
      case Item::kLast:
        net::async_write(stream_, beast_http::make_chunk_last(), done);
        break;
    }
  }

  // A streaming client sends nothing more; a read that ends means it left.
  void WatchForClose() {
    stream_.async_read_some(net::buffer(sink_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              Lock lock(self->mu_);
                              if (ec) return self->Abort();
                              if (self->state_ == State::kStreaming) self->WatchForClose();
                            });
  }

  void Abort() {
    if (auto abort = std::move(abort_)) {
      abort_ = nullptr;
      abort();
    }
    if (!end_queued_ || state_ != State::kStreaming) CloseSocket();
  }

  void CloseSocket() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    if (auto abort = std::move(abort_)) {
      abort_ = nullptr;
      abort();
    }
    for (auto& item : items_) {
      if (item.written) item.written(false);
    }
    items_.clear();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  std::recursive_mutex mu_;
  beast::tcp_stream stream_;
  net::steady_timer read_timer_{stream_.get_executor()};
  net::steady_timer write_timer_{stream_.get_executor()};
  bool read_timed_out_ = false;
  const HttpLimits& limits_;
  const HttpHandler& handler_;
  const HttpServerOptions& options_;
  beast::flat_buffer buffer_;
  std::optional<beast_http::request_parser<beast_http::string_body>> parser_;
  State state_ = State::kReading;
  bool keep_alive_ = true;
  bool head_ = false;
  bool shutting_down_ = false;
  unsigned version_ = 11;
  uint64_t generation_ = 0;
  std::shared_ptr<beast_http::response<beast_http::empty_body>> stream_head_;
  std::deque<Item> items_;
  bool writing_ = false;
  bool end_queued_ = false;
  std::function<void()> abort_;
  char sink_[512];
};

namespace {

class ExchangeImpl final : public Exchange {
 public:
  ExchangeImpl(std::shared_ptr<HttpServer::Connection> c, uint64_t generation)
      : connection_(std::move(c)), generation_(generation) {}

  void Reply(int status, std::string content_type, std::string body, HttpHeaders headers) override {
    // Written from this thread: one hand-off fewer on every unary call.
    connection_->DoReply(generation_, status, std::move(content_type), std::move(body),
                         std::move(headers));
  }
  void StartStream(std::string content_type, HttpHeaders headers) override {
    net::post(
        connection_->executor(),
        [c = connection_, g = generation_, ct = std::move(content_type),
         h = std::move(headers)]() mutable { c->DoStartStream(g, std::move(ct), std::move(h)); });
  }
  void Send(std::string chunk, std::function<void(bool)> written) override {
    net::post(connection_->executor(),
              [c = connection_, g = generation_, d = std::move(chunk),
               w = std::move(written)]() mutable { c->DoSend(g, std::move(d), std::move(w)); });
  }
  void End() override {
    net::post(connection_->executor(), [c = connection_, g = generation_] { c->DoEnd(g); });
  }
  void OnAbort(std::function<void()> abort) override {
    net::post(connection_->executor(),
              [c = connection_, g = generation_, a = std::move(abort)]() mutable {
                c->DoOnAbort(g, std::move(a));
              });
  }

 private:
  std::shared_ptr<HttpServer::Connection> connection_;
  uint64_t generation_;
};

}  // namespace

void HttpServer::Connection::Handle() {
  HttpRequest request = parser_->release();
  head_ = request.method() == beast_http::verb::head;
  // Nothing is pending on the stream until the answer: no timer may fire
  // while another thread writes it.
  stream_.expires_never();
  keep_alive_ = request.keep_alive();
  version_ = request.version();
  state_ = State::kHandling;
  end_queued_ = false;
  abort_ = nullptr;
  ++generation_;
  handler_(std::move(request), std::make_shared<ExchangeImpl>(shared_from_this(), generation_));
}

HttpServer::HttpServer(HttpLimits limits, HttpHandler handler, HttpServerOptions options)
    : limits_(limits), handler_(std::move(handler)), options_(std::move(options)) {}

HttpServer::~HttpServer() { Shutdown(std::chrono::milliseconds(0)); }

absl::StatusOr<int> HttpServer::Listen(const std::string& host_port) {
  const size_t colon = host_port.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(host_port.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address '", host_port, "' is not host:port"));
  }
  std::string host = host_port.substr(0, colon);
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  beast::error_code ec;
  auto address = net::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  if (ec)
    return absl::InvalidArgumentError(absl::StrCat("listen host '", host, "': ", ec.message()));
  acceptor_ = std::make_unique<tcp::acceptor>(net::make_strand(io_));
  tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  acceptor_->open(endpoint.protocol(), ec);
  if (!ec) acceptor_->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(endpoint, ec);
  if (!ec) acceptor_->listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", host_port, ": ", ec.message()));
  }
  return static_cast<int>(acceptor_->local_endpoint().port());
}

void HttpServer::Start(int threads) {
  Accept();
  for (int i = 0; i < std::max(1, threads); ++i) {
    threads_.emplace_back([this] { io_.run(); });
  }
}

void HttpServer::Accept() {
  acceptor_->async_accept(net::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted) return;
      // Out of descriptors, say: wait a little instead of spinning.
      spdlog::warn("http accept failed: {}", ec.message());
      auto timer = std::make_shared<net::steady_timer>(acceptor_->get_executor(),
                                                       std::chrono::milliseconds(100));
      timer->async_wait([this, timer](beast::error_code) {
        absl::MutexLock lock(&mu_);
        if (!stopped_) Accept();
      });
      return;
    } else {
      socket.set_option(tcp::no_delay(true), ec);
      auto c = std::make_shared<Connection>(std::move(socket), limits_, handler_, options_);
      Track(c);
      c->Start();
    }
    absl::MutexLock lock(&mu_);
    if (!stopped_) Accept();
  });
}

void HttpServer::Track(const std::shared_ptr<Connection>& c) {
  absl::MutexLock lock(&mu_);
  connections_.erase(std::remove_if(connections_.begin(), connections_.end(),
                                    [](const auto& w) { return w.expired(); }),
                     connections_.end());
  connections_.push_back(c);
}

void HttpServer::Shutdown(std::chrono::milliseconds grace) {
  std::vector<std::weak_ptr<Connection>> live;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    live = connections_;
  }
  if (acceptor_) {
    net::post(acceptor_->get_executor(), [this] {
      beast::error_code ignored;
      acceptor_->close(ignored);
    });
  }
  for (auto& w : live) {
    if (auto c = w.lock()) c->Close();
  }
  const absl::Time deadline = absl::Now() + absl::FromChrono(grace);
  while (absl::Now() < deadline) {
    bool any = false;
    for (auto& w : live) any = any || !w.expired();
    if (!any) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  io_.stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace orchestrator::http
