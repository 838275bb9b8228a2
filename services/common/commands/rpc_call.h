#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/sync_stream.h>

#include <functional>
#include <memory>

namespace orchestrator::commands {

using google::protobuf::Message;

// One RPC of a generated stub, with its types erased so that a table of
// commands can hold any of them. Built by Unary() or ServerStream() from
// the stub's own method, so the call is exactly the generated one; the
// method's descriptor (its permission, its request fields) comes along.
struct RpcCall {
  const google::protobuf::MethodDescriptor* method = nullptr;
  std::function<std::unique_ptr<Message>()> new_request;
  std::function<std::unique_ptr<Message>()> new_response;
  // Unary: fills *response.
  std::function<grpc::Status(const std::shared_ptr<grpc::Channel>&, grpc::ClientContext*,
                             const Message& request, Message* response)>
      unary;
  // Server streaming: calls on_message for each response, in order; a false
  // return cancels the call.
  std::function<grpc::Status(const std::shared_ptr<grpc::Channel>&, grpc::ClientContext*,
                             const Message& request,
                             const std::function<bool(const Message&)>& on_message)>
      stream;

  bool streaming() const { return static_cast<bool>(stream); }
};

namespace internal {
// The method of `service` taking Req and returning Resp (our contracts give
// every RPC its own request and response messages).
const google::protobuf::MethodDescriptor* FindMethod(const char* service,
                                                     const google::protobuf::Descriptor* request,
                                                     const google::protobuf::Descriptor* response);
}  // namespace internal

template <typename Service, typename Req, typename Resp>
RpcCall Unary(grpc::Status (Service::Stub::*method)(grpc::ClientContext*, const Req&, Resp*)) {
  RpcCall c;
  c.method =
      internal::FindMethod(Service::service_full_name(), Req::descriptor(), Resp::descriptor());
  c.new_request = [] { return std::make_unique<Req>(); };
  c.new_response = [] { return std::make_unique<Resp>(); };
  c.unary = [method](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* ctx,
                     const Message& request, Message* response) {
    typename Service::Stub stub(channel);
    return (stub.*method)(ctx, static_cast<const Req&>(request), static_cast<Resp*>(response));
  };
  return c;
}

template <typename Service, typename Req, typename Resp>
RpcCall ServerStream(std::unique_ptr<grpc::ClientReader<Resp>> (Service::Stub::*method)(
    grpc::ClientContext*, const Req&)) {
  RpcCall c;
  c.method =
      internal::FindMethod(Service::service_full_name(), Req::descriptor(), Resp::descriptor());
  c.new_request = [] { return std::make_unique<Req>(); };
  c.new_response = [] { return std::make_unique<Resp>(); };
  c.stream = [method](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* ctx,
                      const Message& request,
                      const std::function<bool(const Message&)>& on_message) {
    typename Service::Stub stub(channel);
    auto reader = (stub.*method)(ctx, static_cast<const Req&>(request));
    Resp response;
    while (reader->Read(&response)) {
      if (!on_message(response)) {
        ctx->TryCancel();
        break;
      }
    }
    return reader->Finish();
  };
  return c;
}

}  // namespace orchestrator::commands
