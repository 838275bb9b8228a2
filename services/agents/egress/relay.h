#pragma once

#include <array>
#include <boost/asio.hpp>
#include <functional>
#include <memory>

namespace orchestrator::agents {

// A relay direction's buffer.
using RelayBuffer = std::array<char, 16384>;

// One direction of a byte relay between two Asio stream sockets: what `from`
// sends is written to `to`, one read in flight, until `from` ends (then `to`
// is half-closed, so its peer sees the end while the other direction may go
// on) or either side fails. `done(clean)` is called once: clean when `from`
// ended. `keep` owns the sockets and the buffer and is held until then.
template <typename From, typename To>
void Relay(From& from, To& to, RelayBuffer& buf, std::shared_ptr<void> keep,
           std::function<void(bool clean)> done) {
  from.async_read_some(boost::asio::buffer(buf), [&from, &to, &buf, keep, done](
                                                     boost::system::error_code ec, size_t n) {
    if (ec == boost::asio::error::eof) {
      boost::system::error_code ignored;
      to.shutdown(boost::asio::socket_base::shutdown_send, ignored);
      return done(true);
    }
    if (ec) return done(false);
    boost::asio::async_write(to, boost::asio::buffer(buf.data(), n),
                             [&from, &to, &buf, keep, done](boost::system::error_code ec, size_t) {
                               if (ec) return done(false);
                               Relay(from, to, buf, keep, done);
                             });
  });
}

}  // namespace orchestrator::agents
