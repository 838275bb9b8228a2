#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "services/common/executor/bounded_executor.h"
#include "services/common/peers/project_visibility.h"
#include "services/common/rpc/call_context.h"
#include "services/common/rpc/serve_unary.h"
#include "services/common/status/status.h"

namespace orchestrator {

// ServeUnary for a request that must name a project and whose body acts for
// the project's owner (as the mesh, through a peer): asks `projects` whether
// the caller may see it, as for ServeUnaryForProject, and runs
// `body(caller, owner_id)` on the executor. An empty `project_id` is
// INVALID_ARGUMENT naming `field`.
template <typename Body>
grpc::ServerUnaryReactor* ServeUnaryForProjectOwner(grpc::CallbackServerContext* context,
                                                    BoundedExecutorPtr executor,
                                                    ProjectVisibility* projects,
                                                    absl::string_view field,
                                                    absl::string_view project_id, Body body) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto caller = CallerOf(context);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  if (project_id.empty()) {
    reactor->Finish(ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat(field, ": required"))));
    return reactor;
  }
  if (projects == nullptr) {
    reactor->Finish(ToGrpcStatus(absl::FailedPreconditionError(
        absl::StrCat(field, ": this server cannot reach ProjectService to check the project"))));
    return reactor;
  }
  projects->FindOwner(CredentialsOf(*context), field, project_id,
                      [reactor, executor = std::move(executor), caller = std::move(*caller),
                       body = std::move(body)](absl::StatusOr<std::string> owner) mutable {
                        if (!owner.ok()) return reactor->Finish(ToGrpcStatus(owner.status()));
                        absl::Status queued = executor->Submit([reactor, caller = std::move(caller),
                                                                owner = *std::move(owner),
                                                                body = std::move(body)]() mutable {
                          reactor->Finish(ToGrpcStatus(body(caller, owner)));
                        });
                        if (!queued.ok()) reactor->Finish(ToGrpcStatus(queued));
                      });
  return reactor;
}

// ServeUnary for a request that names a project: when `project_id` is set,
// first asks `projects` whether the caller may see it (as the caller, without
// holding an executor thread, since ProjectService may be served by this very
// process), and answers its NOT_FOUND / PERMISSION_DENIED without running
// `body`. A server that cannot reach ProjectService (`projects` null) refuses
// project ids rather than trusting them.
template <typename Body>
grpc::ServerUnaryReactor* ServeUnaryForProject(grpc::CallbackServerContext* context,
                                               BoundedExecutorPtr executor,
                                               ProjectVisibility* projects, absl::string_view field,
                                               absl::string_view project_id, Body body) {
  if (project_id.empty()) return ServeUnary(context, *executor, std::move(body));
  return ServeUnaryForProjectOwner(
      context, std::move(executor), projects, field, project_id,
      [body = std::move(body)](const Principal& caller, const std::string&) mutable {
        return body(caller);
      });
}

}  // namespace orchestrator
