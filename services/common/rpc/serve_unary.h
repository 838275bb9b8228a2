#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include <utility>

#include "absl/status/statusor.h"
#include "services/common/executor/bounded_executor.h"
#include "services/common/rpc/call_context.h"
#include "services/common/status/status.h"

namespace orchestrator {

// Serves a unary callback RPC: takes the caller the interceptor
// authenticated, runs `body(caller)` on the executor (so the reactor never
// blocks on the database), and finishes the call exactly once with the
// body's status. `body` returns absl::Status and fills the response itself.
template <typename Body>
grpc::ServerUnaryReactor* ServeUnary(grpc::CallbackServerContext* context,
                                     BoundedExecutor& executor, Body body) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto caller = CallerOf(context);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  absl::Status queued =
      executor.Submit([reactor, caller = std::move(*caller), body = std::move(body)]() mutable {
        reactor->Finish(ToGrpcStatus(body(caller)));
      });
  if (!queued.ok()) reactor->Finish(ToGrpcStatus(queued));
  return reactor;
}

// For bodies: moves a domain result into the response with `set`, or passes
// the error on.
template <typename T, typename Setter>
absl::Status FillResponse(absl::StatusOr<T> result, Setter set) {
  if (!result.ok()) return result.status();
  set(std::move(*result));
  return absl::OkStatus();
}

}  // namespace orchestrator
