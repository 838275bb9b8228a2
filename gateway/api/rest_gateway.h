#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/generic/generic_stub.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gateway/api/upstreams.h"
#include "gateway/routing/route_table.h"
#include "services/common/http/http_server.h"

namespace orchestrator::gateway {

// Serves the contracts over HTTP/JSON: finds a request's route, builds the
// request message, calls the mesh through a generic stub with the caller's
// `authorization` and a request id, and answers in JSON with the HTTP
// status of the gRPC code. A server stream becomes Server-Sent Events
// (Accept: text/event-stream; each event's id is its sequence, and a
// Last-Event-ID resumes after it) or NDJSON otherwise. Also /healthz,
// /readyz and /openapi.json, and any local routes added (the Telegram
// webhook).
class RestGateway {
 public:
  struct Options {
    std::chrono::milliseconds call_deadline{30'000};  // unary calls upstream
    // Threads polling the unary calls' completion queue, which also turn
    // answers into JSON.
    int upstream_threads = 2;
  };
  RestGateway(RouteTable routes, Upstreams upstreams, Options options);
  ~RestGateway();

  // Cancels every call upstream still in flight and waits (up to `grace`)
  // until their answers are given; later requests get 503. Before the HTTP
  // server goes away: no answer may arrive after it.
  void Shutdown(std::chrono::milliseconds grace);

  // The calls upstream in flight: what Shutdown cancels.
  class LiveCalls {
   public:
    bool Add(grpc::ClientContext* context);  // false once shutting down
    void Remove(grpc::ClientContext* context);
    void CancelAllAndWait(std::chrono::milliseconds grace);

   private:
    absl::Mutex mu_;
    std::set<grpc::ClientContext*> calls_ ABSL_GUARDED_BY(mu_);
    bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  };

  // A path served by the gateway itself (exact match, any method).
  void AddLocalRoute(std::string path, http::HttpHandler handler);

  void Handle(http::HttpRequest request, std::shared_ptr<http::Exchange> exchange);

  const RouteTable& routes() const { return routes_; }

 private:
  void Readiness(std::shared_ptr<http::Exchange> exchange);
  // One unary call upstream; `done` runs on a poller thread. A completion
  // queue polled by our own threads: the thread that reads the answer off
  // the wire is the one that answers, with no hand-off in between.
  void CallUnary(grpc::GenericStub* stub, std::shared_ptr<grpc::ClientContext> context,
                 const std::string& method, const google::protobuf::Message& request,
                 std::function<void(const grpc::Status&, const grpc::ByteBuffer&)> done);

  RouteTable routes_;
  grpc::GenericStub* StubFor(const google::protobuf::ServiceDescriptor* service);

  Upstreams upstreams_;
  std::map<const grpc::Channel*, std::unique_ptr<grpc::GenericStub>> stubs_;
  Options options_;
  std::string openapi_;
  std::map<std::string, http::HttpHandler> local_;
  struct UnaryCall;
  LiveCalls live_;
  grpc::CompletionQueue cq_;
  std::vector<std::thread> pollers_;
};

// Answers with the JSON error body and the HTTP status of the code.
void ReplyError(http::Exchange& exchange, const absl::Status& status,
                http::HttpHeaders headers = {});

}  // namespace orchestrator::gateway
