#include "services/agents/api/sandbox_mesh_proxy.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <unistd.h>

#include <atomic>
#include <set>
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

// One forwarded call: the sandbox's side (a server reactor, "up") and the
// component's side (a client reactor, "down"), message by message with flow
// control (the next message is read only once the previous one is written).
//
// The down side may be called only while it is held: `open_hold` from the
// start until nothing more can go down (the sandbox half-closed, or the
// component's answer ended), plus one hold per operation in flight that
// will touch it again (an up write followed by a down read, a down write).
// The mutex orders taking a hold against dropping `open_hold`, so no call
// reaches the down side once it may have finished. Deleted once both sides
// are done.
class ProxyCall {
 public:
  ProxyCall(grpc::GenericCallbackServerContext* ctx, std::shared_ptr<grpc::Channel> channel,
            std::atomic<int>* open_calls)
      : ctx_(ctx), stub_(std::move(channel)), open_calls_(open_calls) {}

  grpc::ServerGenericBidiReactor* Begin() {
    for (const auto& [key, value] : ctx_->client_metadata()) {
      absl::string_view k(key.data(), key.size());
      if (Forwarded(k)) {
        client_ctx_.AddMetadata(std::string(k), std::string(value.data(), value.size()));
      }
    }
    if (ctx_->deadline() != std::chrono::system_clock::time_point::max()) {
      client_ctx_.set_deadline(ctx_->deadline());
    }
    stub_.PrepareBidiStreamingCall(&client_ctx_, ctx_->method(), grpc::StubOptions(), &down_);
    down_.AddHold();  // open_hold
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
    void OnReadDone(bool ok) override { call_->UpRead(ok); }
    void OnWriteDone(bool ok) override {
      // Held since the component's message was read (DownRead).
      if (ok) {
        call_->down_.StartRead(&call_->down_message_);
      } else {
        call_->client_ctx_.TryCancel();  // nobody to answer
      }
      call_->down_.RemoveHold();
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
    void OnReadDone(bool ok) override { call_->DownRead(ok); }
    void OnWriteDone(bool ok) override {
      // Held since the sandbox's message was read (UpRead).
      if (ok) call_->up_.StartRead(&call_->up_message_);
      // else: the call is ending at the component; its status comes.
      call_->down_.RemoveHold();
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

  // A message from the sandbox (ok), or its half-close / departure.
  void UpRead(bool ok) {
    {
      absl::MutexLock lock(&mu_);
      if (ok && !closed_) {
        down_.AddHold();  // until the down write is done
      } else if (ok) {
        return;  // the component's answer is over: nothing more goes down
      }
    }
    if (ok) {
      down_.StartWrite(&up_message_);
      return;
    }
    if (Close()) {
      down_.StartWritesDone();
      down_.RemoveHold();  // open_hold
    }
  }

  // A message from the component (ok), or the end of its answer.
  void DownRead(bool ok) {
    if (ok) {
      down_.AddHold();  // until the up write is done (Up::OnWriteDone)
      up_.StartWrite(&down_message_);
      return;
    }
    // Its status comes once nothing holds the down side: the sandbox may be
    // waiting to read, not to write, so it must not wait for a half-close.
    if (Close()) down_.RemoveHold();  // open_hold
  }

  // True for the one caller that closes the way down.
  bool Close() {
    absl::MutexLock lock(&mu_);
    if (closed_) return false;
    closed_ = true;
    return true;
  }

  void Done() {
    if (sides_done_.fetch_add(1) == 1) {
      open_calls_->fetch_sub(1);
      delete this;
    }
  }

  grpc::GenericCallbackServerContext* ctx_;
  grpc::GenericStub stub_;
  std::atomic<int>* open_calls_;
  grpc::ClientContext client_ctx_;
  grpc::ByteBuffer up_message_;    // sandbox → component
  grpc::ByteBuffer down_message_;  // component → sandbox
  Up up_{this};
  Down down_{this};
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;  // open_hold dropped
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
  Service(std::set<std::string> components, ChannelTo channel_to)
      : components_(std::move(components)), channel_to_(std::move(channel_to)) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    const std::string component = ComponentOfMethod(ctx->method());
    // Only the mesh's own components: a name made up by a sandbox opens no
    // channel anywhere.
    if (!components_.contains(component)) {
      return new Refusal(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                      absl::StrCat(ctx->method(), " is not served to sandboxes")));
    }
    // All sandboxes share this socket: a bound on what they hold open.
    if (open_calls_.fetch_add(1) >= kMaxOpenCalls) {
      open_calls_.fetch_sub(1);
      return new Refusal(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                      absl::StrCat("the sandboxes' way to the mesh has ",
                                                   kMaxOpenCalls, " calls open; retry later")));
    }
    return (new ProxyCall(ctx, channel_to_(component), &open_calls_))->Begin();
  }

 private:
  static constexpr int kMaxOpenCalls = 1024;
  const std::set<std::string> components_;
  ChannelTo channel_to_;
  std::atomic<int> open_calls_{0};
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
    const std::string& unix_socket, const std::string& tcp_listen, std::set<std::string> components,
    ChannelTo channel_to) {
  std::unique_ptr<SandboxMeshProxy> proxy(new SandboxMeshProxy());
  proxy->service_ = std::make_unique<Service>(std::move(components), std::move(channel_to));
  ::unlink(unix_socket.c_str());
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + unix_socket, grpc::InsecureServerCredentials());
  int tcp_port = 0;
  if (!tcp_listen.empty()) {
    builder.AddListeningPort(tcp_listen, grpc::InsecureServerCredentials(), &tcp_port);
  }
  builder.RegisterCallbackGenericService(proxy->service_.get());
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 64);  // per sandbox connection
  proxy->server_ = builder.BuildAndStart();
  if (proxy->server_ == nullptr || (!tcp_listen.empty() && tcp_port == 0)) {
    return absl::UnavailableError(absl::StrCat("agents: cannot listen on unix:", unix_socket,
                                               tcp_listen.empty() ? "" : " and ", tcp_listen));
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
