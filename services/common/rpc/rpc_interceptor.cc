#include "services/common/rpc/rpc_interceptor.h"

#include <google/protobuf/message.h>

#include <chrono>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/crypto/secret_box.h"
#include "services/common/logging/format.h"
#include "services/common/rpc/call_context.h"
#include "services/common/status/status.h"
#include "services/common/validation/request_bounds.h"
#include "spdlog/spdlog.h"

namespace orchestrator {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::InterceptorBatchMethods;

constexpr absl::string_view kRequestIdHeader = "x-request-id";
constexpr size_t kMaxRequestIdLength = 128;

absl::string_view MetadataValue(const std::multimap<grpc::string_ref, grpc::string_ref>& md,
                                absl::string_view key) {
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) return {};
  return absl::string_view(it->second.data(), it->second.size());
}

bool IsPrintable(absl::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

absl::StatusOr<Principal> Authenticate(absl::string_view authorization, TokenVerifier& verifier,
                                       const MeshCredential* mesh) {
  if (authorization.empty()) {
    return absl::UnauthenticatedError(
        "missing credentials: send metadata 'authorization: Bearer <token>'");
  }
  constexpr absl::string_view kBearer = "Bearer ";
  if (!absl::StartsWithIgnoreCase(authorization, kBearer) ||
      authorization.size() == kBearer.size()) {
    return absl::UnauthenticatedError("authorization must be 'Bearer <token>'");
  }
  const absl::string_view token = authorization.substr(kBearer.size());
  if (mesh != nullptr && mesh->Matches(token)) return MeshPrincipal();
  return verifier.Verify(token);
}

class RpcInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcInterceptor(grpc::experimental::ServerRpcInfo* info, const MethodAccess* access,
                 TokenVerifier* verifier, const MeshCredential* mesh, RateLimiter* per_token,
                 RateLimiter* per_user)
      : context_(info->server_context()),
        method_(info->method()),
        access_(access),
        verifier_(verifier),
        mesh_(mesh),
        per_token_(per_token),
        per_user_(per_user),
        start_(std::chrono::steady_clock::now()) {}

  ~RpcInterceptor() override {
    internal::UnregisterCall(context_);
    Log();
  }

  void Intercept(InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      OnMetadata(*methods->GetRecvInitialMetadata());
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      OnMessage(methods->GetRecvMessage());
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace(std::string(kRequestIdHeader), request_id_);
      sent_request_id_ = true;
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      if (refusal_.ok() && access_ != nullptr && !access_->client_streaming && !received_message_ &&
          authenticated_) {
        // gRPC answers a request it could not parse itself, before any
        // handler ran, with a bare UNIMPLEMENTED or INTERNAL.
        const auto code = methods->GetSendStatus().error_code();
        if (code == grpc::StatusCode::UNIMPLEMENTED || code == grpc::StatusCode::INTERNAL) {
          refusal_ = absl::InvalidArgumentError(
              absl::StrCat("the request could not be parsed as ", access_->request_type,
                           ": send that message serialized in protobuf's binary format"));
        }
      }
      if (!refusal_.ok()) methods->ModifySendStatus(ToGrpcStatus(refusal_));
      grpc::Status status = methods->GetSendStatus();
      code_ = status.error_code();
      if (!sent_request_id_) {
        methods->GetSendTrailingMetadata()->emplace(std::string(kRequestIdHeader), request_id_);
      }
    }
    methods->Proceed();
  }

 private:
  void OnMetadata(const std::multimap<grpc::string_ref, grpc::string_ref>& md) {
    absl::string_view given = MetadataValue(md, kRequestIdHeader);
    request_id_ = !given.empty() && given.size() <= kMaxRequestIdLength && IsPrintable(given)
                      ? std::string(given)
                      : RandomUrlSafe(12);
    CallInfo info{method_, request_id_};
    if (access_ != nullptr) {
      info.caller = Admit(MetadataValue(md, "authorization"), MetadataValue(md, kActForHeader),
                          MetadataValue(md, kOriginHeader));
      if (!info.caller.ok()) refusal_ = info.caller.status();
    }
    internal::RegisterCall(context_, std::move(info));
  }

  // Who calls, if they may call this method now.
  absl::StatusOr<Principal> Admit(absl::string_view authorization, absl::string_view act_for,
                                  absl::string_view origin) {
    auto principal = Authenticate(authorization, *verifier_, mesh_);
    if (!principal.ok()) return principal.status();
    auto claim = ParseOriginClaim(origin);
    if (!claim.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          kOriginHeader, " (the CLI sends $", kOriginEnvironment, "): ", claim.status().message()));
    }

    authenticated_ = true;
    user_id_ = principal->user_id;
    if (!act_for.empty()) {
      if (!IsMesh(*principal)) {
        return absl::PermissionDeniedError(absl::StrCat(
            kActForHeader, ": only the mesh may act for another user; send your own token only"));
      }
      if (act_for.size() > kMaxRequestIdLength || !IsPrintable(act_for)) {
        return absl::InvalidArgumentError(absl::StrCat(kActForHeader,
                                                       ": must be a user id (printable, at most ",
                                                       kMaxRequestIdLength, " bytes)"));
      }
      principal = MeshPrincipal(act_for);
      user_id_ = absl::StrCat("mesh:", act_for);
    }
    if (access_->mesh_only && !IsMesh(*principal)) {
      return absl::PermissionDeniedError(
          absl::StrCat("'", access_->permission, "' is for the mesh itself: ", method_,
                       " is callable only with the mesh credential"));
    }
    if (!access_->any_authenticated && !principal->Allows(access_->permission)) {
      return absl::PermissionDeniedError(
          absl::StrCat("missing permission '", access_->permission, "'"));
    }
    if (principal->kind != PrincipalKind::kMesh) {
      absl::string_view whose = "token";
      auto wait = per_token_->Acquire(principal->token_id);
      if (wait.count() == 0) {
        whose = "user";
        wait = per_user_->Acquire(principal->user_id);
      }
      if (wait.count() > 0) {
        return RetryLater(absl::StrCat("rate limit: too many calls from this ", whose,
                                       "; retry in ", wait.count(), " ms"),
                          wait);
      }
    }
    principal->origin = *std::move(claim);
    return principal;
  }

  void OnMessage(void* message) {
    if (message == nullptr || access_ == nullptr) return;
    received_message_ = true;
    if (!refusal_.ok()) return;
    // Every method in our contracts takes a generated protobuf message.
    absl::Status bounds =
        CheckRequestBounds(*static_cast<const google::protobuf::Message*>(message));
    if (!bounds.ok()) {
      refusal_ = bounds;
      internal::RefuseCall(context_, std::move(bounds));
    }
  }

  void Log() const {
    const double latency_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_)
            .count();
    absl::string_view path = method_;
    size_t slash = path.rfind('/');
    absl::string_view svc = path.substr(1, slash == absl::string_view::npos ? 0 : slash - 1);
    absl::string_view rpc = slash == absl::string_view::npos ? path : path.substr(slash + 1);
    // Health and reflection are polled by probes: keep them out of the info log.
    const auto level = access_ == nullptr ? spdlog::level::debug : spdlog::level::info;
    spdlog::log(level, "rpc svc={} rpc={} request_id={} user={} code={} latency_ms={:.3f}", svc,
                rpc, request_id_, user_id_.empty() ? "-" : user_id_,
                absl::StatusCodeToString(static_cast<absl::StatusCode>(code_)), latency_ms);
  }

  grpc::ServerContextBase* context_;
  std::string method_;
  const MethodAccess* access_;
  TokenVerifier* verifier_;
  const MeshCredential* mesh_;
  RateLimiter* per_token_;
  RateLimiter* per_user_;
  std::chrono::steady_clock::time_point start_;
  std::string request_id_;
  std::string user_id_;  // once authenticated, allowed or not
  absl::Status refusal_;
  bool authenticated_ = false;
  bool received_message_ = false;
  bool sent_request_id_ = false;
  grpc::StatusCode code_ = grpc::StatusCode::UNKNOWN;
};

}  // namespace

grpc::experimental::Interceptor* RpcInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new RpcInterceptor(info, access_->Find(info->method()), verifier_.get(), mesh_.get(),
                            per_token_.get(), per_user_.get());
}

}  // namespace orchestrator
