#include "services/agents/api/sandbox_mesh_proxy.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <unistd.h>

#include <atomic>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "spdlog/spdlog.h"

namespace orchestrator::agents {
namespace {

// Metadata gRPC itself sets, or that must not cross on its own.
bool Forwarded(absl::string_view key) {
  return !key.empty() && key[0] != ':' && !absl::StartsWith(key, "grpc-") && key != "te" &&
         key != "content-type" && key != "user-agent" && key != "host";
}

// One forwarded call: the sandbox's side (a server reactor) and the
// component's side (a client reactor), message by message with flow control
// (the next message is read only once the previous one is written). Deleted
// once both sides are done.
class ProxyCall {
 public:
  ProxyCall(grpc::GenericCallbackServerContext* ctx, std::shared_ptr<grpc::Channel> channel)
      : ctx_(ctx), stub_(std::move(channel)) {}

  grpc::ServerGenericBidiReactor* Begin() {
    for (const auto& [key, value] : ctx_->client_metadata()) {
      absl::string_view k(key.data(), key.size());
      if (Forwarded(k))
        client_ctx_.AddMetadata(std::string(k), std::string(value.data(), value.size()));
    }
    if (ctx_->deadline() != std::chrono::system_clock::time_point::max()) {
      client_ctx_.set_deadline(ctx_->deadline());
    }
    stub_.PrepareBidiStreamingCall(&client_ctx_, ctx_->method(), grpc::StubOptions(), &down_);
    // Held until no more messages go up: the component's side cannot end
    // (and be deleted) while the sandbox's side may still write to it.
    down_.AddHold();
    down_.StartRead(&down_message_);
    up_.StartRead(&up_message_);
    down_.StartCall();
    return &up_;
  }

 private:
  // The sandbox's side.
  class Up final : public grpc::ServerGenericBidiReactor {
   public:
    explicit Up(ProxyCall* call) : call_(call) {}
    void OnReadDone(bool ok) override {
      if (ok) {
        call_->down_.StartWrite(&call_->up_message_);
      } else {
        // The sandbox half-closed, or went away.
        call_->down_.StartWritesDone();
        call_->ReleaseHold();
      }
    }
    void OnWriteDone(bool ok) override {
      if (ok) {
        call_->down_.StartRead(&call_->down_message_);
      } else {
        call_->client_ctx_.TryCancel();  // nobody to answer
      }
    }
    void OnCancel() override { call_->client_ctx_.TryCancel(); }
    void OnDone() override { call_->Done(); }

   private:
    ProxyCall* call_;
  };

  // The component's side.
  class Down final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
   public:
    explicit Down(ProxyCall* call) : call_(call) {}
    void OnReadDone(bool ok) override {
      if (ok) call_->up_.StartWrite(&call_->down_message_);
      // else: the component's answer ends; OnDone brings its status.
    }
    void OnWriteDone(bool ok) override {
      if (ok) {
        call_->up_.StartRead(&call_->up_message_);
      } else {
        // The call is ending upstream: nothing more goes up.
        call_->ReleaseHold();
      }
    }
    void OnDone(const grpc::Status& status) override {
      for (const auto& [key, value] : call_->client_ctx_.GetServerTrailingMetadata()) {
        absl::string_view k(key.data(), key.size());
        if (Forwarded(k)) {
          call_->ctx_->AddTrailingMetadata(std::string(k), std::string(value.data(), value.size()));
        }
      }
      call_->up_.Finish(status);
      call_->Done();
    }

   private:
    ProxyCall* call_;
  };

  void ReleaseHold() {
    if (!hold_released_.exchange(true)) down_.RemoveHold();
  }
  void Done() {
    if (sides_done_.fetch_add(1) == 1) delete this;
  }

  grpc::GenericCallbackServerContext* ctx_;
  grpc::GenericStub stub_;
  grpc::ClientContext client_ctx_;
  grpc::ByteBuffer up_message_;    // sandbox → component
  grpc::ByteBuffer down_message_;  // component → sandbox
  Up up_{this};
  Down down_{this};
  std::atomic<bool> hold_released_{false};
  std::atomic<int> sides_done_{0};
};

// Answers a call it cannot forward.
class Refusal final : public grpc::ServerGenericBidiReactor {
 public:
  explicit Refusal(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

class SandboxMeshProxy::Service final : public grpc::CallbackGenericService {
 public:
  explicit Service(ChannelTo channel_to) : channel_to_(std::move(channel_to)) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    const std::string component = ComponentOfMethod(ctx->method());
    if (component.empty()) {
      return new Refusal(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                      absl::StrCat(ctx->method(), " is not served to sandboxes")));
    }
    return (new ProxyCall(ctx, channel_to_(component)))->Begin();
  }

 private:
  ChannelTo channel_to_;
};

std::string SandboxMeshProxy::ComponentOfMethod(absl::string_view method) {
  // "/orchestrator.<component>.v1.<Service>/<Method>"
  if (!absl::ConsumePrefix(&method, "/orchestrator.")) return "";
  std::vector<absl::string_view> parts = absl::StrSplit(method, absl::MaxSplits('.', 2));
  if (parts.size() != 3 || parts[0].empty() || parts[1] != "v1") return "";
  for (char c : parts[0]) {
    if (c < 'a' || c > 'z') return "";
  }
  return std::string(parts[0]);
}

absl::StatusOr<std::unique_ptr<SandboxMeshProxy>> SandboxMeshProxy::Start(
    const std::string& unix_socket, ChannelTo channel_to) {
  std::unique_ptr<SandboxMeshProxy> proxy(new SandboxMeshProxy());
  proxy->service_ = std::make_unique<Service>(std::move(channel_to));
  ::unlink(unix_socket.c_str());
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + unix_socket, grpc::InsecureServerCredentials());
  builder.RegisterCallbackGenericService(proxy->service_.get());
  proxy->server_ = builder.BuildAndStart();
  if (proxy->server_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("agents: cannot listen on unix:", unix_socket));
  }
  return proxy;
}

void SandboxMeshProxy::Shutdown(std::chrono::system_clock::time_point deadline) {
  if (server_) server_->Shutdown(deadline);
}

SandboxMeshProxy::~SandboxMeshProxy() {
  Shutdown(std::chrono::system_clock::now());
  if (server_) server_->Wait();
}

}  // namespace orchestrator::agents
