#include "services/common/http/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <functional>

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

// GitHub's answers carry long Content-Security-Policy and Link headers.
constexpr uint32_t kMaxHeaderBytes = 64 << 10;

// How an exchange ended.
struct Outcome {
  beast::error_code ec;
  const char* phase = "";  // what was under way: "resolve", "connect", ...
  bool cancelled = false;
  bool timed_out = false;
};

// One request on a fresh connection: resolve, connect, the TLS handshake
// when there is one (`handshake`), write, read, all asynchronous under one
// deadline, and ended early (the socket closed) once `cancel` turns true.
template <typename Stream, typename Handshake>
Outcome Exchange(net::io_context& io, tcp::socket& socket, Stream& stream, Handshake handshake,
                 const BaseUrl& base, const bhttp::request<bhttp::string_body>& req,
                 bhttp::response_parser<bhttp::string_body>* parser, absl::Duration timeout,
                 const std::atomic<bool>* cancel) {
  tcp::resolver resolver(io);
  Outcome outcome;
  beast::flat_buffer buffer;
  const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
  net::steady_timer timer(io);
  bool finished = false;
  auto finish = [&](const char* phase, beast::error_code ec) {
    finished = true;
    outcome.phase = phase;
    outcome.ec = ec;
    timer.cancel();
  };
  std::function<void()> arm = [&] {
    timer.expires_after(std::chrono::milliseconds(200));
    timer.async_wait([&](beast::error_code ec) {
      if (ec || finished) return;
      const bool cancelled = cancel != nullptr && cancel->load();
      if (cancelled || std::chrono::steady_clock::now() >= deadline) {
        outcome.cancelled = cancelled;
        outcome.timed_out = !cancelled;
        beast::error_code ignored;
        resolver.cancel();
        socket.close(ignored);
        return;
      }
      arm();
    });
  };
  arm();
  // The head first: Boost 1.74 loses the body_limit error when it parses
  // a head and its body in one go.
  auto exchange = [&] {
    bhttp::async_write(stream, req, [&](beast::error_code ec, size_t) {
      if (ec) return finish("write", ec);
      bhttp::async_read_header(stream, buffer, *parser, [&](beast::error_code ec2, size_t) {
        if (ec2) return finish("read", ec2);
        if (parser->is_done()) return finish("read", ec2);
        bhttp::async_read(stream, buffer, *parser,
                          [&](beast::error_code ec3, size_t) { finish("read", ec3); });
      });
    });
  };
  resolver.async_resolve(
      base.host, base.port, [&](beast::error_code ec, tcp::resolver::results_type r) {
        if (ec) return finish("resolve", ec);
        net::async_connect(socket, r, [&](beast::error_code ec2, const tcp::endpoint&) {
          if (ec2) return finish("connect", ec2);
          handshake([&](beast::error_code ec3) {
            if (ec3) return finish("TLS handshake", ec3);
            exchange();
          });
        });
      });
  io.run();
  return outcome;
}

}  // namespace

absl::StatusOr<BaseUrl> BaseUrl::Parse(absl::string_view url) {
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("URL \"", url, "\": ", why));
  };
  BaseUrl base;
  absl::string_view rest = url;
  if (absl::ConsumePrefix(&rest, "https://")) {
    base.tls = true;
  } else if (!absl::ConsumePrefix(&rest, "http://")) {
    return bad("must start with http:// or https://");
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
  return absl::StrContains(host, ':') ? absl::StrCat("[", host, "]:", port)
                                      : absl::StrCat(host, ":", port);
}

std::string BaseUrl::HostHeader() const {
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
    tls_context_->set_default_verify_paths();
    tls_context_->set_verify_mode(net::ssl::verify_peer);
  }
}

HttpClient::~HttpClient() = default;

absl::StatusOr<Response> HttpClient::Send(const Request& request) const {
  bhttp::request<bhttp::string_body> req;
  req.method_string(request.method);
  req.target(base_.path_prefix + request.target);
  req.version(11);
  req.set(bhttp::field::host, base_.HostHeader());
  req.set(bhttp::field::user_agent, options_.user_agent);
  for (const auto& [name, value] : request.headers) req.set(name, value);
  req.body() = request.body;
  req.prepare_payload();

  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(options_.max_response_bytes);
  parser.header_limit(kMaxHeaderBytes);
  if (request.method == "HEAD") parser.skip(true);

  net::io_context io;
  Outcome outcome;
  if (tls_context_ != nullptr) {
    beast::ssl_stream<tcp::socket> stream(io, *tls_context_);
    SSL_set_tlsext_host_name(stream.native_handle(), base_.host.c_str());
    stream.set_verify_callback(net::ssl::host_name_verification(base_.host));
    outcome = Exchange(
        io, stream.next_layer(), stream,
        [&](auto done) { stream.async_handshake(net::ssl::stream_base::client, done); }, base_, req,
        &parser, request.timeout, options_.cancel);
  } else {
    tcp::socket socket(io);
    outcome = Exchange(
        io, socket, socket, [](auto done) { done(beast::error_code()); }, base_, req, &parser,
        request.timeout, options_.cancel);
  }

  const std::string where = absl::StrCat(request.method, " ", base_.Authority());
  if (outcome.cancelled) return absl::CancelledError(absl::StrCat(where, ": cancelled"));
  if (outcome.timed_out) {
    return absl::UnavailableError(
        absl::StrCat(where, ": no answer within ", absl::FormatDuration(request.timeout)));
  }
  if (outcome.ec == bhttp::error::body_limit || outcome.ec == bhttp::error::header_limit) {
    return absl::ResourceExhaustedError(
        absl::StrCat(where, ": the answer is larger than ", options_.max_response_bytes, " bytes"));
  }
  if (outcome.ec) {
    return absl::UnavailableError(
        absl::StrCat(where, ": ", outcome.phase, ": ", outcome.ec.message()));
  }
  auto res = parser.release();
  Response response;
  response.status = res.result_int();
  for (const auto& field : res) {
    response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  response.body = std::move(res.body());
  return response;
}

}  // namespace orchestrator::http
