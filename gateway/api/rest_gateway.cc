#include "gateway/api/rest_gateway.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/alarm.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/client_callback.h>

#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gateway/openapi/openapi.h"
#include "gateway/transcode/transcoder.h"
#include "grpc/health/v1/health.pb.h"
#include "services/common/status/status.h"

namespace orchestrator::gateway {
namespace {

namespace beast_http = boost::beast::http;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

constexpr const char* kJson = "application/json";

grpc::ByteBuffer ToByteBuffer(const Message& message) {
  grpc::Slice slice(message.SerializeAsString());
  return grpc::ByteBuffer(&slice, 1);
}

bool ParseByteBuffer(const grpc::ByteBuffer& buffer, Message* message) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return message->ParseFromString(bytes);
}

std::string NewRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrCat("gw-", absl::Hex(rng(), absl::kZeroPad16));
}

// What an ASCII gRPC metadata value may hold.
bool IsPrintableAscii(absl::string_view value) {
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// An upstream's failure as the caller sees it. When gRPC itself could not
// reach the component (its transport's words, not a component's answer),
// the caller is told which component is down: in a split mesh that is the
// one thing they need to know.
absl::Status UpstreamStatus(const grpc::Status& status,
                            const google::protobuf::ServiceDescriptor* service) {
  std::vector<absl::string_view> parts = absl::StrSplit(service->full_name(), '.');
  const absl::string_view component = parts.size() > 1 ? parts[1] : service->full_name();
  return FromPeerStatus(status,
                        absl::StrCat("the ", component, " component (", service->full_name(), ")"));
}

std::string MethodPath(const google::protobuf::MethodDescriptor* m) {
  return absl::StrCat("/", m->service()->full_name(), "/", m->name());
}

// The sequence an event carries: `sequence` on the response or on one of
// its message fields (WatchJobResponse.event.sequence). 0 when none.
int64_t SequenceOf(const Message& m) {
  const auto* d = m.GetDescriptor();
  const auto* r = m.GetReflection();
  if (const FieldDescriptor* f = d->FindFieldByName("sequence");
      f != nullptr && f->cpp_type() == FieldDescriptor::CPPTYPE_INT64 && !f->is_repeated()) {
    return r->GetInt64(m, f);
  }
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !f->is_repeated() &&
        r->HasField(m, f)) {
      const Message& inner = r->GetMessage(m, f);
      const FieldDescriptor* s = inner.GetDescriptor()->FindFieldByName("sequence");
      if (s != nullptr && s->cpp_type() == FieldDescriptor::CPPTYPE_INT64 && !s->is_repeated()) {
        return inner.GetReflection()->GetInt64(inner, s);
      }
    }
  }
  return 0;
}

// One server-streaming call upstream, relayed event by event: the next
// message is read only once the previous one is on the wire, so a slow
// client slows the stream instead of filling memory.
constexpr std::chrono::milliseconds kQuietStart{300};

class StreamCall final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  StreamCall(const google::protobuf::MethodDescriptor* method, bool sse,
             std::shared_ptr<grpc::ClientContext> context, std::string request_id,
             std::shared_ptr<http::Exchange> exchange, const Message& request,
             RestGateway::LiveCalls* live)
      : live_(live),
        method_(method),
        sse_(sse),
        context_(std::move(context)),
        request_id_(std::move(request_id)),
        exchange_(std::move(exchange)),
        request_(ToByteBuffer(request)) {}

  void Start(grpc::GenericStub* stub) {
    exchange_->OnAbort([context = context_] { context->TryCancel(); });
    stub->PrepareBidiStreamingCall(context_.get(), MethodPath(method_), grpc::StubOptions(), this);
    StartWriteLast(&request_, grpc::WriteOptions());
    StartRead(&response_);
    // A stream that fails at once still gets its own HTTP status (a 404);
    // one that is merely quiet (a watch with nothing to say yet) gets its
    // headers after kQuietStart, so the client knows it is in place.
    AddHold();
    quiet_.Set(std::chrono::system_clock::now() + kQuietStart, [this](bool fired) {
      if (fired) StartOnce();
      RemoveHold();
    });
    StartCall();
  }

  void OnWriteDone(bool) override {}

  void OnReadDone(bool ok) override {
    if (!ok) {
      quiet_.Cancel();  // OnDone follows with the status
      return;
    }
    std::unique_ptr<Message> message = NewMessage(method_->output_type());
    if (!ParseByteBuffer(response_, message.get())) {
      context_->TryCancel();
      return;
    }
    StartOnce();
    std::string chunk;
    if (sse_) {
      const int64_t sequence = SequenceOf(*message);
      if (sequence > 0) absl::StrAppend(&chunk, "id: ", sequence, "\n");
      absl::StrAppend(&chunk, "data: ", ToJson(*message), "\n\n");
    } else {
      absl::StrAppend(&chunk, ToJson(*message), "\n");
    }
    AddHold();
    exchange_->Send(std::move(chunk), [this](bool written) {
      if (written) {
        StartRead(&response_);
      } else {
        context_->TryCancel();
      }
      RemoveHold();
    });
  }

  void OnDone(const grpc::Status& status) override {
    const absl::Status s = UpstreamStatus(status, method_->service());
    {
      absl::MutexLock lock(&mu_);
      if (!started_ && !s.ok()) {
        ReplyError(*exchange_, s, {{"x-request-id", request_id_}});
      } else {
        StartOnceLocked();
        if (!s.ok()) {
          exchange_->Send(sse_ ? absl::StrCat("event: error\ndata: ", ErrorJson(s), "\n\n")
                               : absl::StrCat("{\"error\":", ErrorJson(s), "}\n"),
                          nullptr);
        }
        exchange_->End();
      }
    }
    live_->Remove(context_.get());
    delete this;
  }

 private:
  void StartOnce() {
    absl::MutexLock lock(&mu_);
    StartOnceLocked();
  }
  void StartOnceLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (started_) return;
    started_ = true;
    exchange_->StartStream(sse_ ? "text/event-stream" : "application/x-ndjson",
                           {{"x-request-id", request_id_}});
  }

  RestGateway::LiveCalls* live_;
  const google::protobuf::MethodDescriptor* method_;
  const bool sse_;
  std::shared_ptr<grpc::ClientContext> context_;
  std::string request_id_;
  std::shared_ptr<http::Exchange> exchange_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  grpc::Alarm quiet_;
  absl::Mutex mu_;  // the quiet alarm's thread and the reactions both start the stream
  bool started_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

struct RestGateway::UnaryCall {
  std::shared_ptr<grpc::ClientContext> context;
  grpc::ByteBuffer response;
  grpc::Status status;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  std::function<void(const grpc::Status&, const grpc::ByteBuffer&)> done;
};

void ReplyError(http::Exchange& exchange, const absl::Status& status, http::HttpHeaders headers) {
  // A rate limit's retry delay (google.rpc.RetryInfo) as whole seconds.
  if (auto delay = RetryDelayOf(status); delay.has_value()) {
    headers.emplace_back("retry-after",
                         absl::StrCat(std::max<int64_t>(1, (delay->count() + 999) / 1000)));
  }
  exchange.Reply(HttpStatusFor(status.code()), kJson, ErrorJson(status), std::move(headers));
}

RestGateway::RestGateway(RouteTable routes, Upstreams upstreams, Options options)
    : routes_(std::move(routes)),
      upstreams_(std::move(upstreams)),
      options_(options),
      openapi_(OpenApiDocument(routes_)) {
  for (const auto& channel : upstreams_.All()) {
    stubs_.emplace(channel.get(), std::make_unique<grpc::GenericStub>(channel));
  }
  for (int i = 0; i < std::max(1, options_.upstream_threads); ++i) {
    pollers_.emplace_back([this] {
      void* tag;
      bool ok;
      while (cq_.Next(&tag, &ok)) {
        auto* call = static_cast<UnaryCall*>(tag);
        call->done(call->status, call->response);
        live_.Remove(call->context.get());
        delete call;
      }
    });
  }
}

bool RestGateway::LiveCalls::Add(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return false;
  calls_.insert(context);
  return true;
}

void RestGateway::LiveCalls::Remove(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  calls_.erase(context);
}

void RestGateway::LiveCalls::CancelAllAndWait(std::chrono::milliseconds grace) {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  for (auto* c : calls_) c->TryCancel();
  auto empty = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return calls_.empty(); };
  mu_.AwaitWithTimeout(absl::Condition(&empty), absl::FromChrono(grace));
}

void RestGateway::Shutdown(std::chrono::milliseconds grace) { live_.CancelAllAndWait(grace); }

RestGateway::~RestGateway() {
  Shutdown(std::chrono::milliseconds(2000));
  cq_.Shutdown();
  for (auto& t : pollers_) t.join();
}

grpc::GenericStub* RestGateway::StubFor(const google::protobuf::ServiceDescriptor* service) {
  return stubs_.at(upstreams_.For(service).get()).get();
}

void RestGateway::CallUnary(
    grpc::GenericStub* stub, std::shared_ptr<grpc::ClientContext> context,
    const std::string& method, const Message& request,
    std::function<void(const grpc::Status&, const grpc::ByteBuffer&)> done) {
  if (!live_.Add(context.get())) {
    return done(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the gateway is shutting down"),
                grpc::ByteBuffer());
  }
  auto* call = new UnaryCall{std::move(context), {}, {}, nullptr, std::move(done)};
  call->reader = stub->PrepareUnaryCall(call->context.get(), method, ToByteBuffer(request), &cq_);
  call->reader->StartCall();
  call->reader->Finish(&call->response, &call->status, call);
}

void RestGateway::AddLocalRoute(std::string path, http::HttpHandler handler) {
  local_[std::move(path)] = std::move(handler);
}

void RestGateway::Handle(http::HttpRequest request, std::shared_ptr<http::Exchange> exchange) {
  const absl::string_view target(request.target().data(), request.target().size());
  const size_t q = target.find('?');
  const absl::string_view path = target.substr(0, q);
  const absl::string_view query = q == absl::string_view::npos ? "" : target.substr(q + 1);
  const std::string method(request.method_string());

  if (auto local = local_.find(std::string(path)); local != local_.end()) {
    return local->second(std::move(request), std::move(exchange));
  }
  if (path == "/healthz") return exchange->Reply(200, kJson, "{\"status\":\"SERVING\"}");
  if (path == "/readyz") return Readiness(std::move(exchange));
  if (path == "/openapi.json") {
    if (method != "GET") {
      return exchange->Reply(405, kJson,
                             ErrorJson(absl::FailedPreconditionError(
                                 "method " + method + " is not allowed here; use GET")),
                             {{"allow", "GET"}});
    }
    return exchange->Reply(200, kJson, openapi_);
  }

  // A caller's request id is kept when it is one gRPC metadata can carry.
  std::string request_id(request["x-request-id"]);
  if (request_id.empty() || request_id.size() > 128 || !IsPrintableAscii(request_id)) {
    request_id = NewRequestId();
  }
  const http::HttpHeaders id_header = {{"x-request-id", request_id}};

  auto match = routes_.Find(method, path);
  if (!match.ok()) {
    if (match.status().code() == absl::StatusCode::kFailedPrecondition) {
      // "method PUT is not allowed here; use GET, POST"
      http::HttpHeaders headers = id_header;
      const absl::string_view message = match.status().message();
      if (const size_t use = message.rfind("; use "); use != absl::string_view::npos) {
        headers.emplace_back("allow", std::string(message.substr(use + 6)));
      }
      return exchange->Reply(405, kJson, ErrorJson(match.status()), std::move(headers));
    }
    return ReplyError(*exchange, match.status(), id_header);
  }
  const Route& route = *match->route;
  const std::string& body = request.body();
  if (!absl::StripAsciiWhitespace(body).empty()) {
    const absl::string_view content_type(request[beast_http::field::content_type].data(),
                                         request[beast_http::field::content_type].size());
    if (auto s = CheckJsonContentType(content_type); !s.ok()) {
      return exchange->Reply(415, kJson, ErrorJson(s), id_header);
    }
  }
  auto message = BuildRequest(route, match->bindings, query, body);
  if (!message.ok()) return ReplyError(*exchange, message.status(), id_header);

  auto context = std::make_shared<grpc::ClientContext>();
  const std::string authorization(request[beast_http::field::authorization]);
  if (!IsPrintableAscii(authorization)) {
    return ReplyError(
        *exchange, absl::UnauthenticatedError("authorization must be 'Bearer <token>'"), id_header);
  }
  if (!authorization.empty()) context->AddMetadata("authorization", authorization);
  context->AddMetadata("x-request-id", request_id);

  if (!route.method->server_streaming()) {
    context->set_deadline(std::chrono::system_clock::now() + options_.call_deadline);
    const auto* method_descriptor = route.method;
    CallUnary(StubFor(route.method->service()), std::move(context), MethodPath(route.method),
              **message,
              [method_descriptor, exchange, id_header](const grpc::Status& status,
                                                       const grpc::ByteBuffer& bytes) {
                if (!status.ok()) {
                  return ReplyError(*exchange, UpstreamStatus(status, method_descriptor->service()),
                                    id_header);
                }
                auto response = NewMessage(method_descriptor->output_type());
                if (!ParseByteBuffer(bytes, response.get())) {
                  return ReplyError(*exchange, absl::InternalError("unreadable upstream response"),
                                    id_header);
                }
                exchange->Reply(200, kJson, ToJson(*response), id_header);
              });
    return;
  }

  // Last-Event-ID resumes a stream whose request takes after_sequence.
  const auto last_event_id = request["last-event-id"];
  if (!last_event_id.empty()) {
    const FieldDescriptor* after = (*message)->GetDescriptor()->FindFieldByName("after_sequence");
    int64_t sequence = 0;
    if (after == nullptr || after->cpp_type() != FieldDescriptor::CPPTYPE_INT64) {
      return ReplyError(*exchange,
                        absl::InvalidArgumentError("Last-Event-ID: this stream cannot resume"),
                        id_header);
    }
    if (!absl::SimpleAtoi(absl::string_view(last_event_id.data(), last_event_id.size()),
                          &sequence) ||
        sequence < 0) {
      return ReplyError(
          *exchange, absl::InvalidArgumentError("Last-Event-ID: not an event id this gateway sent"),
          id_header);
    }
    (*message)->GetReflection()->SetInt64(message->get(), after, sequence);
  }
  const bool sse = absl::StrContains(
      absl::AsciiStrToLower(absl::string_view(request[beast_http::field::accept].data(),
                                              request[beast_http::field::accept].size())),
      "text/event-stream");
  if (!live_.Add(context.get())) {
    return ReplyError(*exchange, absl::UnavailableError("the gateway is shutting down"), id_header);
  }
  auto* call = new StreamCall(route.method, sse, std::move(context), request_id,
                              std::move(exchange), **message, &live_);
  call->Start(StubFor(route.method->service()));
}

void RestGateway::Readiness(std::shared_ptr<http::Exchange> exchange) {
  // Ready when every upstream's health check says SERVING.
  struct Tally {
    absl::Mutex mu;
    size_t pending;
    std::string problem;
  };
  auto tally = std::make_shared<Tally>();
  tally->pending = stubs_.size();
  for (auto& [channel, stub] : stubs_) {
    auto context = std::make_shared<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    CallUnary(
        stub.get(), context, "/grpc.health.v1.Health/Check", grpc::health::v1::HealthCheckRequest(),
        [tally, exchange](const grpc::Status& status, const grpc::ByteBuffer& bytes) {
          grpc::health::v1::HealthCheckResponse health;
          const bool serving = status.ok() && ParseByteBuffer(bytes, &health) &&
                               health.status() == grpc::health::v1::HealthCheckResponse::SERVING;
          absl::MutexLock lock(&tally->mu);
          if (!serving && tally->problem.empty()) {
            tally->problem = status.ok() ? "NOT_SERVING" : status.error_message();
          }
          if (--tally->pending > 0) return;
          if (tally->problem.empty()) {
            return exchange->Reply(200, kJson, "{\"status\":\"SERVING\"}");
          }
          ReplyError(*exchange, absl::UnavailableError(
                                    absl::StrCat("the mesh is not serving: ", tally->problem)));
        });
  }
}

}  // namespace orchestrator::gateway
