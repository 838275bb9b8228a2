#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace orchestrator::http {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// Per server: the gateway keeps bodies small, the git server takes packs.
struct HttpLimits {
  size_t max_body_bytes = 1 << 20;     // larger: 413
  size_t max_header_bytes = 16 << 10;  // larger: 431
  // A keep-alive connection with no request for this long is closed.
  std::chrono::milliseconds idle_timeout{60'000};
  // A request must arrive whole within this (slow clients are cut off with 408).
  std::chrono::milliseconds read_timeout{30'000};
};

// One request's answer, given once: a whole response (Reply) or a stream
// (StartStream, Send..., End). Any thread may call; the connection writes
// in order on its own strand. After the client went away every call is a
// no-op and the abort callback has run.
class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual void Reply(int status, std::string content_type, std::string body,
                     HttpHeaders headers = {}) = 0;
  virtual void StartStream(std::string content_type, HttpHeaders headers) = 0;
  // `written` runs exactly once: true when the chunk is on the wire (the
  // caller's flow control), false when the connection is gone.
  virtual void Send(std::string chunk, std::function<void(bool)> written) = 0;
  virtual void End() = 0;
  // Runs once, if the client disconnects or the server shuts down before End.
  virtual void OnAbort(std::function<void()> abort) = 0;
};

using HttpHandler = std::function<void(HttpRequest request, std::shared_ptr<Exchange> exchange)>;

// The answer to a request the server could not read (413, 431, 408, 400).
struct HttpRefusal {
  std::string content_type;
  std::string body;
};

// How a server words such answers; by default the status's message as text.
struct HttpServerOptions {
  std::string server_name = "orchestrator";  // the Server header
  std::function<HttpRefusal(const absl::Status& status)> refusal;
};

// An HTTP/1.1 server on Boost.Beast: asynchronous connections served by a
// few io threads (never a thread per connection), keep-alive, chunked
// streams, limits on header and body size, idle and read timeouts, and a
// graceful shutdown that lets answers in flight finish.
class HttpServer {
 public:
  HttpServer(HttpLimits limits, HttpHandler handler, HttpServerOptions options = {});
  ~HttpServer();

  // Binds host:port (port 0 picks one); returns the bound port.
  absl::StatusOr<int> Listen(const std::string& host_port);
  void Start(int threads);
  // Stops accepting, closes idle connections, aborts streams, and waits up
  // to `grace` for answers in flight before stopping.
  void Shutdown(std::chrono::milliseconds grace);

  class Connection;

 private:
  void Accept();
  void Track(const std::shared_ptr<Connection>& c);

  HttpLimits limits_;
  HttpHandler handler_;
  HttpServerOptions options_;
  boost::asio::io_context io_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::vector<std::thread> threads_;
  // Guards the open connections (for Shutdown) and whether it stopped.
  absl::Mutex mu_;
  std::vector<std::weak_ptr<Connection>> connections_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace orchestrator::http
