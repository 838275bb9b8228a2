#pragma once

#include <atomic>
#include <cstddef>
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

// Where a client sends its requests, from "http[s]://host[:port][/prefix]".
struct BaseUrl {
  bool tls = false;
  std::string host;         // without brackets for an IPv6 literal
  std::string port;         // "80" / "443" when the URL names none
  std::string path_prefix;  // "" or "/prefix", never ending in '/'

  // INVALID_ARGUMENT for a scheme other than http/https, no host, a bad
  // port, a query or a fragment (naming the URL), or a user:password@ (not
  // naming it).
  static absl::StatusOr<BaseUrl> Parse(absl::string_view url);

  // "host:port" ("[::1]:port" for IPv6): what errors name.
  std::string Authority() const;
  // The Host header: the port only when it is not the scheme's default.
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
  // For the whole exchange: resolve, connect, TLS handshake, write, read.
  absl::Duration timeout = absl::Seconds(30);
};

struct Response {
  int status = 0;
  Headers headers;  // as received, in order
  std::string body;

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
};

// An HTTP/1.1 client of one server: each request on a fresh connection (TLS
// with the system's CAs and host name verification for https), under one
// deadline. Any HTTP status is a response; errors are of the exchange
// itself: UNAVAILABLE for resolving, connecting, TLS, writing, reading or
// the deadline, naming the method and host:port (never the target,
// headers or body). Safe to use from many threads.
class HttpClient {
 public:
  HttpClient(BaseUrl base, ClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  absl::StatusOr<Response> Send(const Request& request) const;

  const BaseUrl& base() const { return base_; }

 private:
  BaseUrl base_;
  ClientOptions options_;
  // Configured once (CA paths are read once); an SSL_CTX is safe to share
  // between threads once configured. Null for http.
  std::unique_ptr<boost::asio::ssl::context> tls_context_;
};

}  // namespace orchestrator::http
