#include "services/common/http/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/http/file_body.hpp>
#include <boost/beast/http/span_body.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <functional>
#include <limits>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace orchestrator::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using local_stream = net::local::stream_protocol;

// GitHub's answers carry long Content-Security-Policy and Link headers.
constexpr uint32_t kMaxHeaderBytes = 64 << 10;
// What Stream reads from the connection at a time.
constexpr size_t kStreamPieceBytes = 16 << 10;
// Longer timeouts are taken as none: a deadline that far would overflow the
// clock.
constexpr absl::Duration kLongestDeadline = absl::Hours(24 * 365);

// The body is the Request's own bytes, not a copy (a build context may be
// hundreds of MiB), or its body_file, read in pieces as it is written.
using OutgoingRequest = bhttp::request<bhttp::span_body<const char>>;
using OutgoingFileRequest = bhttp::request<bhttp::file_body>;

// How an exchange ended.
struct Outcome {
  beast::error_code ec;
  const char* phase = "";  // what was under way: "resolve", "connect", ...
  bool cancelled = false;
  bool timed_out = false;
};

// A connection's end: `finish(phase, ec)`, called once.
using Finish = std::function<void(const char* phase, beast::error_code ec)>;

bool Cancelled(const std::atomic<bool>* a, const std::atomic<bool>* b) {
  return (a != nullptr && a->load()) || (b != nullptr && b->load());
}

// One request on a fresh connection: `connect` (resolve, connect and the
// TLS handshake, or a unix socket's connect; it reports through its
// argument), write, read the head, then `read_body(stream, buffer, finish)`,
// all asynchronous under one deadline (none for an infinite timeout), and
// ended early by `abort` (which closes the socket) once a cancel flag turns
// true.
template <typename Stream, typename Req, typename Parser, typename Connect, typename ReadBody>
Outcome Exchange(net::io_context& io, Stream& stream, Connect connect,
                 const std::function<void()>& abort, Req& req, Parser& parser, ReadBody read_body,
                 absl::Duration timeout, const std::atomic<bool>* cancel,
                 const std::atomic<bool>* request_cancel) {
  Outcome outcome;
  beast::flat_buffer buffer;
  const bool has_deadline = timeout < kLongestDeadline;
  const auto deadline = std::chrono::steady_clock::now() +
                        absl::ToChronoNanoseconds(has_deadline ? timeout : kLongestDeadline);
  net::steady_timer timer(io);
  bool finished = false;
  Finish finish = [&](const char* phase, beast::error_code ec) {
    finished = true;
    outcome.phase = phase;
    outcome.ec = ec;
    timer.cancel();
  };
  std::function<void()> arm = [&] {
    timer.expires_after(std::chrono::milliseconds(200));
    timer.async_wait([&](beast::error_code ec) {
      if (ec || finished) return;
      const bool cancelled = Cancelled(cancel, request_cancel);
      if (cancelled || (has_deadline && std::chrono::steady_clock::now() >= deadline)) {
        outcome.cancelled = cancelled;
        outcome.timed_out = !cancelled;
        abort();
        return;
      }
      arm();
    });
  };
  arm();
  // The head first: Boost 1.74 loses the body_limit error when it parses
  // a head and its body in one go.
  connect([&](const char* phase, beast::error_code ec) {
    if (ec) return finish(phase, ec);
    bhttp::async_write(stream, req, [&](beast::error_code ec2, size_t) {
      if (ec2) return finish("write", ec2);
      bhttp::async_read_header(stream, buffer, parser, [&](beast::error_code ec3, size_t) {
        if (ec3 || parser.is_done()) return finish("read", ec3);
        read_body(stream, buffer, finish);
      });
    });
  });
  io.run();
  return outcome;
}

// Runs one exchange over the transport `base` names: a unix socket, TCP, or
// TLS over TCP with `tls`.
template <typename Req, typename Parser, typename ReadBody>
Outcome Run(const BaseUrl& base, net::ssl::context* tls, Req& req, Parser& parser,
            ReadBody read_body, const Request& request, const std::atomic<bool>* cancel) {
  net::io_context io;
  if (!base.unix_socket.empty()) {
    local_stream::socket socket(io);
    auto connect = [&](auto done) {
      socket.async_connect(local_stream::endpoint(base.unix_socket),
                           [done](beast::error_code ec) { done("connect", ec); });
    };
    auto abort = [&] {
      beast::error_code ignored;
      socket.close(ignored);
    };
    return Exchange(io, socket, connect, abort, req, parser, read_body, request.timeout, cancel,
                    request.cancel);
  }
  tcp::resolver resolver(io);
  // Resolves and connects `socket`, then calls `then(done)`.
  auto connect_tcp = [&](tcp::socket& socket, auto done, auto then) {
    resolver.async_resolve(
        base.host, base.port,
        [socket = &socket, done, then](beast::error_code ec, tcp::resolver::results_type r) {
          if (ec) return done("resolve", ec);
          net::async_connect(*socket, r, [done, then](beast::error_code ec2, const tcp::endpoint&) {
            if (ec2) return done("connect", ec2);
            then(done);
          });
        });
  };
  auto abort_tcp = [&](tcp::socket& socket) {
    beast::error_code ignored;
    resolver.cancel();
    socket.close(ignored);
  };
  if (tls != nullptr) {
    beast::ssl_stream<tcp::socket> stream(io, *tls);
    SSL_set_tlsext_host_name(stream.native_handle(), base.host.c_str());
    stream.set_verify_callback(net::ssl::host_name_verification(base.host));
    auto connect = [&](auto done) {
      connect_tcp(stream.next_layer(), done, [&](auto connected) {
        stream.async_handshake(net::ssl::stream_base::client, [connected](beast::error_code ec) {
          connected("TLS handshake", ec);
        });
      });
    };
    return Exchange(
        io, stream, connect, [&] { abort_tcp(stream.next_layer()); }, req, parser, read_body,
        request.timeout, cancel, request.cancel);
  }
  tcp::socket socket(io);
  auto connect = [&](auto done) {
    connect_tcp(socket, done, [](auto connected) { connected("connect", beast::error_code()); });
  };
  return Exchange(
      io, socket, connect, [&] { abort_tcp(socket); }, req, parser, read_body, request.timeout,
      cancel, request.cancel);
}

// Reads the rest of a body through `parser` into `piece`, handing each part
// to `deliver` as it arrives, until the message ends or `deliver` returns
// false.
template <typename Stream>
void ReadPieces(Stream& stream, beast::flat_buffer& buffer,
                bhttp::response_parser<bhttp::buffer_body>& parser, std::vector<char>& piece,
                const std::function<bool(absl::string_view)>& deliver, Finish& finish) {
  if (parser.is_done()) return finish("read", beast::error_code());
  parser.get().body().data = piece.data();
  parser.get().body().size = piece.size();
  bhttp::async_read_some(
      stream, buffer, parser,
      [&stream, &buffer, &parser, &piece, &deliver, &finish](beast::error_code ec, size_t) {
        if (ec == bhttp::error::need_buffer) ec = {};
        if (ec) return finish("read", ec);
        const size_t n = piece.size() - parser.get().body().size;
        if (n > 0 && !deliver(absl::string_view(piece.data(), n))) {
          return finish("read", beast::error_code());
        }
        ReadPieces(stream, buffer, parser, piece, deliver, finish);
      });
}

// The request line and headers of `request`, without its body.
template <typename Req>
void SetHead(const BaseUrl& base, const Request& request, const std::string& user_agent, Req& req) {
  req.method_string(request.method);
  req.target(base.path_prefix + request.target);
  req.version(11);
  req.set(bhttp::field::host, base.HostHeader());
  req.set(bhttp::field::user_agent, user_agent);
  for (const auto& [name, value] : request.headers) req.set(name, value);
}

// Runs `request`, its body from memory or from its body_file; an error
// only when the body file cannot be opened.
template <typename Parser, typename ReadBody>
absl::StatusOr<Outcome> RunRequest(const BaseUrl& base, net::ssl::context* tls,
                                   const Request& request, const std::string& user_agent,
                                   Parser& parser, ReadBody read_body,
                                   const std::atomic<bool>* cancel) {
  if (request.body_file.empty()) {
    OutgoingRequest req;
    SetHead(base, request, user_agent, req);
    req.body() = beast::span<const char>(request.body.data(), request.body.size());
    req.prepare_payload();
    return Run(base, tls, req, parser, read_body, request, cancel);
  }
  OutgoingFileRequest req;
  SetHead(base, request, user_agent, req);
  beast::error_code ec;
  req.body().open(request.body_file.c_str(), beast::file_mode::scan, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("the body file ", request.body_file, ": ", ec.message()));
  }
  req.prepare_payload();
  return Run(base, tls, req, parser, read_body, request, cancel);
}

template <typename Fields>
Headers HeadersOf(const Fields& fields) {
  Headers headers;
  for (const auto& field : fields) {
    headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  return headers;
}

absl::Status TooLarge(const std::string& where, size_t max_response_bytes) {
  return absl::ResourceExhaustedError(
      absl::StrCat(where, ": the answer is larger than ", max_response_bytes, " bytes"));
}

// The status of an exchange that did not end with a whole answer, OK when
// it did. `where` is the method and the server, never the target.
absl::Status OutcomeStatus(const std::string& where, const Request& request, const Outcome& outcome,
                           size_t max_response_bytes) {
  if (outcome.cancelled) return absl::CancelledError(absl::StrCat(where, ": cancelled"));
  if (outcome.timed_out) {
    return absl::UnavailableError(
        absl::StrCat(where, ": no answer within ", absl::FormatDuration(request.timeout)));
  }
  if (outcome.ec == bhttp::error::body_limit || outcome.ec == bhttp::error::header_limit) {
    return TooLarge(where, max_response_bytes);
  }
  if (outcome.ec) {
    return absl::UnavailableError(
        absl::StrCat(where, ": ", outcome.phase, ": ", outcome.ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BaseUrl> BaseUrl::Parse(absl::string_view url) {
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("URL \"", url, "\": ", why));
  };
  BaseUrl base;
  absl::string_view rest = url;
  if (absl::ConsumePrefix(&rest, "unix://")) {
    // sockaddr_un::sun_path holds 108 bytes with the terminating NUL.
    constexpr size_t kMaxSocketPath = 107;
    if (!absl::StartsWith(rest, "/")) return bad("the socket path must be absolute");
    if (rest.size() > kMaxSocketPath) {
      return bad(absl::StrCat("the socket path is longer than ", kMaxSocketPath, " bytes"));
    }
    if (rest.find_first_of(absl::string_view("?#\0", 3)) != absl::string_view::npos) {
      return bad("the socket path must have no query, fragment or NUL");
    }
    base.unix_socket = std::string(rest);
    base.host = "localhost";
    return base;
  }
  if (absl::ConsumePrefix(&rest, "https://")) {
    base.tls = true;
  } else if (!absl::ConsumePrefix(&rest, "http://")) {
    return bad("must start with http://, https:// or unix://");
  }
  const size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  if (absl::StrContains(authority, '@')) {
    // Not repeated: what is before the '@' is a password.
    return absl::InvalidArgumentError("URL: must not hold credentials (user:password@)");
  }
  if (rest.find_first_of("?#") != absl::string_view::npos) {
    return bad("must have no query or fragment");
  }
  if (slash != absl::string_view::npos) base.path_prefix = std::string(rest.substr(slash));
  while (!base.path_prefix.empty() && base.path_prefix.back() == '/') base.path_prefix.pop_back();
  absl::string_view port;
  if (absl::ConsumePrefix(&authority, "[")) {
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) return bad("unclosed '[' in the host");
    base.host = std::string(authority.substr(0, close));
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty() && !absl::ConsumePrefix(&after, ":")) return bad("bad port");
    port = after;
  } else {
    const size_t colon = authority.rfind(':');
    base.host = std::string(authority.substr(0, colon));
    if (colon != absl::string_view::npos) port = authority.substr(colon + 1);
  }
  if (base.host.empty()) return bad("no host");
  int number = 0;
  if (port.empty()) {
    base.port = base.tls ? "443" : "80";
  } else if (!absl::SimpleAtoi(port, &number) || number < 1 || number > 65535 ||
             !absl::ascii_isdigit(port[0])) {
    return bad("bad port");
  } else {
    base.port = std::string(port);
  }
  return base;
}

std::string BaseUrl::Authority() const {
  if (!unix_socket.empty()) return absl::StrCat("unix://", unix_socket);
  return absl::StrContains(host, ':') ? absl::StrCat("[", host, "]:", port)
                                      : absl::StrCat(host, ":", port);
}

std::string BaseUrl::HostHeader() const {
  if (!unix_socket.empty()) return host;
  const std::string h = absl::StrContains(host, ':') ? absl::StrCat("[", host, "]") : host;
  return port == (tls ? "443" : "80") ? h : absl::StrCat(h, ":", port);
}

std::string Response::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return value;
  }
  return "";
}

HttpClient::HttpClient(BaseUrl base, ClientOptions options)
    : base_(std::move(base)), options_(std::move(options)) {
  if (base_.tls) {
    tls_context_ = std::make_unique<net::ssl::context>(net::ssl::context::tls_client);
    boost::system::error_code ec;
    if (options_.ca_pem.empty()) {
      tls_context_->set_default_verify_paths(ec);
    } else {
      tls_context_->add_certificate_authority(net::buffer(options_.ca_pem), ec);
      if (ec) tls_error_ = absl::FailedPreconditionError("the CA certificate is not PEM");
    }
    tls_context_->set_verify_mode(net::ssl::verify_peer);
    if (options_.client_certificate_pem.empty() != options_.client_key_pem.empty()) {
      tls_error_ = absl::FailedPreconditionError(
          "a client certificate needs its key, and a key its certificate");
    } else if (!options_.client_certificate_pem.empty()) {
      tls_context_->use_certificate_chain(net::buffer(options_.client_certificate_pem), ec);
      if (ec) tls_error_ = absl::FailedPreconditionError("the client certificate is not PEM");
      tls_context_->use_private_key(net::buffer(options_.client_key_pem), net::ssl::context::pem,
                                    ec);
      if (ec) tls_error_ = absl::FailedPreconditionError("the client key is not a PEM key");
    }
  }
}

HttpClient::~HttpClient() = default;

absl::StatusOr<Response> HttpClient::Send(const Request& request) const {
  if (!tls_error_.ok()) return tls_error_;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(options_.max_response_bytes);
  parser.header_limit(kMaxHeaderBytes);
  if (request.method == "HEAD") parser.skip(true);
  auto read_whole = [&parser](auto& stream, beast::flat_buffer& buffer, Finish& finish) {
    bhttp::async_read(stream, buffer, parser,
                      [&finish](beast::error_code ec, size_t) { finish("read", ec); });
  };
  const auto outcome = RunRequest(base_, tls_context_.get(), request, options_.user_agent, parser,
                                  read_whole, options_.cancel);
  if (!outcome.ok()) return outcome.status();
  const std::string where = absl::StrCat(request.method, " ", base_.Authority());
  if (auto status = OutcomeStatus(where, request, *outcome, options_.max_response_bytes);
      !status.ok()) {
    return status;
  }
  auto res = parser.release();
  Response response;
  response.status = res.result_int();
  response.headers = HeadersOf(res);
  response.body = std::move(res.body());
  return response;
}

absl::StatusOr<Response> HttpClient::Stream(
    const Request& request, const std::function<bool(absl::string_view piece)>& on_body) const {
  if (!tls_error_.ok()) return tls_error_;
  bhttp::response_parser<bhttp::buffer_body> parser;
  // Bounded by on_body for a 2xx answer, and by `deliver` for any other.
  // Not boost::none: Boost 1.74 takes every Content-Length as over that.
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  parser.header_limit(kMaxHeaderBytes);
  if (request.method == "HEAD") parser.skip(true);
  std::string error_body;
  bool error_body_too_large = false;
  const std::function<bool(absl::string_view)> deliver = [&](absl::string_view piece) {
    const int status = parser.get().result_int();
    if (status >= 200 && status < 300) return on_body(piece);
    if (error_body.size() + piece.size() > options_.max_response_bytes) {
      error_body_too_large = true;
      return false;
    }
    error_body.append(piece.data(), piece.size());
    return true;
  };
  std::vector<char> piece(kStreamPieceBytes);
  auto read_pieces = [&](auto& stream, beast::flat_buffer& buffer, Finish& finish) {
    ReadPieces(stream, buffer, parser, piece, deliver, finish);
  };
  const auto outcome = RunRequest(base_, tls_context_.get(), request, options_.user_agent, parser,
                                  read_pieces, options_.cancel);
  if (!outcome.ok()) return outcome.status();
  const std::string where = absl::StrCat(request.method, " ", base_.Authority());
  if (auto status = OutcomeStatus(where, request, *outcome, options_.max_response_bytes);
      !status.ok()) {
    return status;
  }
  if (error_body_too_large) return TooLarge(where, options_.max_response_bytes);
  Response response;
  response.status = parser.get().result_int();
  response.headers = HeadersOf(parser.get());
  response.body = std::move(error_body);
  return response;
}

absl::StatusOr<int> GetStatus(const std::string& address, const std::string& path,
                              const std::string& host, absl::Duration timeout,
                              const std::string& user_agent) {
  auto base = BaseUrl::Parse(
      absl::StartsWith(address, "unix://") ? address : absl::StrCat("http://", address));
  if (!base.ok()) return base.status();
  ClientOptions options;
  options.user_agent = user_agent;
  options.max_response_bytes = 1 << 20;
  HttpClient client(*base, options);
  Request request;
  request.target = path;
  if (!host.empty()) request.headers = {{"Host", host}};
  request.timeout = timeout;
  auto response = client.Send(request);
  if (!response.ok()) return response.status();
  return response->status;
}

}  // namespace orchestrator::http
