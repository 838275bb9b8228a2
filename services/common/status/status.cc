#include "services/common/status/status.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "services/common/validation/request_bounds.h"

namespace orchestrator {
namespace {

constexpr absl::string_view kRetryInfoType = "type.googleapis.com/google.rpc.RetryInfo";

google::rpc::RetryInfo RetryInfoFor(std::chrono::milliseconds delay) {
  google::rpc::RetryInfo info;
  info.mutable_retry_delay()->set_seconds(delay.count() / 1000);
  info.mutable_retry_delay()->set_nanos(static_cast<int32_t>(delay.count() % 1000) * 1000000);
  return info;
}

std::chrono::milliseconds DelayOf(const google::rpc::RetryInfo& info) {
  return std::chrono::milliseconds(info.retry_delay().seconds() * 1000 +
                                   info.retry_delay().nanos() / 1000000);
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(status.code());
  std::string message = Truncated(status.message(), kMaxStatusMessageBytes);
  auto delay = RetryDelayOf(status);
  if (!delay.has_value()) return grpc::Status(code, std::move(message));
  google::rpc::Status details;
  details.set_code(static_cast<int32_t>(code));
  details.set_message(message);
  auto* any = details.add_details();
  any->set_type_url(std::string(kRetryInfoType));
  any->set_value(RetryInfoFor(*delay).SerializeAsString());
  return grpc::Status(code, std::move(message), details.SerializeAsString());
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status out(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  if (auto delay = RetryDelayOf(status); delay.has_value()) {
    out.SetPayload(kRetryInfoType, absl::Cord(RetryInfoFor(*delay).SerializeAsString()));
  }
  return out;
}

absl::Status RetryLater(absl::string_view message, std::chrono::milliseconds delay) {
  absl::Status out = absl::ResourceExhaustedError(message);
  out.SetPayload(kRetryInfoType, absl::Cord(RetryInfoFor(delay).SerializeAsString()));
  return out;
}

std::optional<std::chrono::milliseconds> RetryDelayOf(const absl::Status& status) {
  auto payload = status.GetPayload(kRetryInfoType);
  google::rpc::RetryInfo info;
  if (!payload.has_value() || !info.ParseFromString(std::string(*payload))) return std::nullopt;
  return DelayOf(info);
}

std::optional<std::chrono::milliseconds> RetryDelayOf(const grpc::Status& status) {
  if (status.error_details().empty()) return std::nullopt;
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) return std::nullopt;
  for (const auto& any : details.details()) {
    google::rpc::RetryInfo info;
    if (any.type_url() == kRetryInfoType && info.ParseFromString(any.value())) return DelayOf(info);
  }
  return std::nullopt;
}

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:  // UNKNOWN, INTERNAL, DATA_LOSS
      return 500;
  }
}

bool IsTransportFailure(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kUnavailable) return false;
  for (absl::string_view words :
       {"failed to connect to all addresses", "Connection refused", "Socket closed",
        "Connection reset", "Broken pipe", "connections to all backends failing",
        "Transport closed", "GOAWAY", "Endpoint read failed", "empty address list"}) {
    if (absl::StartsWith(status.message(), words)) return true;
  }
  return false;
}

absl::Status FromPeerStatus(const grpc::Status& status, absl::string_view peer) {
  absl::Status s = FromGrpcStatus(status);
  if (!IsTransportFailure(s)) return s;
  return absl::UnavailableError(absl::StrCat(peer, " cannot be reached: ", s.message()));
}

}  // namespace orchestrator
