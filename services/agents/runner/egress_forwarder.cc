#include "services/agents/runner/egress_forwarder.h"

#include <array>
#include <boost/asio.hpp>
#include <thread>

#include "absl/strings/str_cat.h"
#include "services/agents/egress/relay.h"

namespace orchestrator::agents {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using local = asio::local::stream_protocol;
using boost::system::error_code;

// One agent connection and its twin on the unix socket.
class Bridge : public std::enable_shared_from_this<Bridge> {
 public:
  Bridge(tcp::socket agent, const std::string& unix_socket)
      : agent_(std::move(agent)), proxy_(agent_.get_executor()), path_(unix_socket) {}

  void Start() {
    proxy_.async_connect(local::endpoint(path_), [self = shared_from_this()](error_code ec) {
      if (ec) return self->Stop();
      auto ended = [self](bool clean) {
        if (!clean || ++self->relay_ends_ == 2) self->Stop();
      };
      Relay(self->agent_, self->proxy_, self->up_, self, ended);
      Relay(self->proxy_, self->agent_, self->down_, self, ended);
    });
  }

 private:
  void Stop() {
    error_code ignored;
    agent_.close(ignored);
    proxy_.close(ignored);
  }

  tcp::socket agent_;
  local::socket proxy_;
  std::string path_;
  int relay_ends_ = 0;  // directions that ended cleanly
  RelayBuffer up_{}, down_{};
};

class ForwarderImpl final : public EgressForwarder {
 public:
  explicit ForwarderImpl(std::string unix_socket)
      : path_(std::move(unix_socket)), acceptor_(io_), backoff_(io_) {}
  ~ForwarderImpl() override {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  absl::Status Listen(int port) {
    error_code ec;
    const tcp::endpoint at(asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port));
    acceptor_.open(at.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(at, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("egress forwarder: cannot listen on 127.0.0.1:", port, ": ", ec.message()));
    }
    port_ = acceptor_.local_endpoint().port();
    Accept();
    thread_ = std::thread([this] { io_.run(); });
    return absl::OkStatus();
  }
  int port() const override { return port_; }

 private:
  void Accept() {
    acceptor_.async_accept([this](error_code ec, tcp::socket agent) {
      if (ec == asio::error::operation_aborted) return;
      if (ec) {  // e.g. out of descriptors: try again shortly
        backoff_.expires_after(std::chrono::milliseconds(100));
        backoff_.async_wait([this](error_code e) {
          if (!e) Accept();
        });
        return;
      }
      std::make_shared<Bridge>(std::move(agent), path_)->Start();
      Accept();
    });
  }

  const std::string path_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  asio::steady_timer backoff_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<EgressForwarder>> EgressForwarder::Start(
    const std::string& unix_socket, int port) {
  auto f = std::make_unique<ForwarderImpl>(unix_socket);
  if (auto s = f->Listen(port); !s.ok()) return s;
  return f;
}

}  // namespace orchestrator::agents
