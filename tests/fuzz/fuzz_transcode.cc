// libFuzzer: an HTTP request's method, target and body → route → request
// message → JSON. Input: "METHOD /path?query\n<body>". Whatever comes in,
// the gateway answers with a status, never a crash; what it accepts turns
// back into JSON.
#include <cstddef>
#include <cstdint>
#include <string>

#include "gateway/routing/route_table.h"
#include "gateway/transcode/transcoder.h"

namespace gw = orchestrator::gateway;

namespace {
const gw::RouteTable& Table() {
  static const gw::RouteTable table = *gw::RouteTable::FromServices(gw::PublicServices());
  return table;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  const std::string head = input.substr(0, newline);
  const std::string body = newline == std::string::npos ? "" : input.substr(newline + 1);
  const size_t space = head.find(' ');
  const std::string method = head.substr(0, space);
  const std::string target = space == std::string::npos ? "/" : head.substr(space + 1);
  const size_t q = target.find('?');
  const std::string query = q == std::string::npos ? "" : target.substr(q + 1);

  auto match = Table().Find(method, target.substr(0, q));
  if (match.ok()) {
    auto request = gw::BuildRequest(*match->route, match->bindings, query, body);
    if (request.ok()) (void)gw::ToJson(**request);
  }
  // The body alone, against a route that takes one whole and one that takes a field.
  for (const char* path : {"/v1/jobs:enqueueDemo", "/v1/projects"}) {
    auto route = Table().Find("POST", path);
    if (!route.ok()) __builtin_trap();
    auto request = gw::BuildRequest(*route->route, {}, query, body);
    if (request.ok()) (void)gw::ToJson(**request);
  }
  (void)gw::ParseQuery(body);
  return 0;
}
