#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace orchestrator::http {

// Where a client sends its requests, from "http[s]://host[:port][/prefix]"
// or "unix:///absolute/path.sock" (a local server such as a container
// engine, reached over a unix domain socket).
struct BaseUrl {
  bool tls = false;
  std::string host;         // without brackets for an IPv6 literal; "localhost" for unix
  std::string port;         // "80" / "443" when the URL names none; "" for unix
  std::string path_prefix;  // "" or "/prefix", never ending in '/'; "" for unix
  std::string unix_socket;  // the socket's absolute path for unix://, "" otherwise

  // INVALID_ARGUMENT for a scheme other than http/https/unix, no host, a bad
  // port, a query or a fragment, a unix socket path that is not absolute or
  // too long for a socket address (naming the URL), or a user:password@
  // (not naming it).
  static absl::StatusOr<BaseUrl> Parse(absl::string_view url);

  // "host:port" ("[::1]:port" for IPv6, "unix:///path" for a unix socket):
  // what errors name.
  std::string Authority() const;
  // The Host header: the port only when it is not the scheme's default
  // ("localhost" for a unix socket).
  std::string HostHeader() const;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method = "GET";
  // Appended to the base URL's path prefix: a path and query, e.g. "/user".
  // May hold a secret (Telegram's token does): never part of an error.
  std::string target = "/";
  // Besides Host, User-Agent (the client's unless given) and Content-Length.
  Headers headers;
  std::string body;
  // When set, the body is this file's contents instead (`body` stays
  // empty), read a few KiB at a time as they are written: for uploads too
  // large to hold in memory, such as an image archive. A file that cannot
  // be opened is FAILED_PRECONDITION naming it.
  std::string body_file;
  // For the whole exchange: resolve, connect, TLS handshake, write, read.
  // absl::InfiniteDuration() for none (a stream that ends when the server
  // ends it, or on cancel).
  absl::Duration timeout = absl::Seconds(30);
  // Besides ClientOptions::cancel: when it turns true, this request ends
  // with CANCELLED (checked every 200 ms).
  const std::atomic<bool>* cancel = nullptr;
};

struct Response {
  int status = 0;
  Headers headers;   // as received, in order
  std::string body;  // for HttpClient::Stream, only a non-2xx answer's

  bool ok() const { return status >= 200 && status < 300; }

  // The first header named `name` (case-insensitively), "" when none.
  std::string Header(absl::string_view name) const;
};

struct ClientOptions {
  std::string user_agent = "orchestrator";
  // Larger answers fail with RESOURCE_EXHAUSTED.
  size_t max_response_bytes = 8 << 20;
  // When it turns true, a request in flight ends with CANCELLED (checked
  // every 200 ms).
  const std::atomic<bool>* cancel = nullptr;
  // For https: PEM certificates of the only authorities to trust (e.g. a
  // Kubernetes cluster's CA) instead of the system's; "" for the system's.
  std::string ca_pem{};
  // For https: a client certificate (PEM, with its chain) and its private
  // key (PEM) to present; both or neither.
  std::string client_certificate_pem{};
  std::string client_key_pem{};
};

// An HTTP/1.1 client of one server: each request on a fresh connection (TLS
// with the system's CAs and host name verification for https, a unix domain
// socket for unix://), under one deadline. Any HTTP status is a response;
// errors are of the exchange itself: UNAVAILABLE for resolving, connecting,
// TLS, writing, reading or the deadline, naming the method and host:port
// or socket (never the target, headers or body). Safe to use from many
// threads.
class HttpClient {
 public:
  HttpClient(BaseUrl base, ClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // The whole answer; RESOURCE_EXHAUSTED past ClientOptions::max_response_bytes.
  absl::StatusOr<Response> Send(const Request& request) const;

  // A 2xx answer's body is handed to `on_body` as it arrives (chunked
  // encoding decoded), in pieces of any size, and is not bounded here:
  // `on_body` keeps what it needs. Returning false from it ends the
  // exchange early: OK with what was read. Any other answer's body is read
  // whole into Response::body (bounded like Send's), since it is the
  // server's explanation. The returned Response has the status and headers.
  absl::StatusOr<Response> Stream(
      const Request& request, const std::function<bool(absl::string_view piece)>& on_body) const;

  const BaseUrl& base() const { return base_; }

 private:
  BaseUrl base_;
  ClientOptions options_;
  // Configured once (CA paths are read once); an SSL_CTX is safe to share
  // between threads once configured. Null for http.
  std::unique_ptr<boost::asio::ssl::context> tls_context_;
  // Why the TLS options could not be used (a bad PEM): every request
  // fails with it.
  absl::Status tls_error_;
};

// One GET of http://<address><path> (address "HOST:PORT", or
// "unix:///PATH" for a unix socket), with `host` as
// the Host header when set: the status code, or the error when nothing
// answered within `timeout`. For health probes; the body is read and
// dropped (at most 1 MiB).
absl::StatusOr<int> GetStatus(const std::string& address, const std::string& path,
                              const std::string& host, absl::Duration timeout,
                              const std::string& user_agent);

}  // namespace orchestrator::http
