#include "services/common/peers/project_visibility.h"

#include <grpcpp/client_context.h>

#include <future>

#include "absl/strings/str_cat.h"
#include "services/common/auth/mesh_identity.h"
#include "services/common/status/status.h"

namespace orchestrator {
namespace {

absl::Status Interpret(const grpc::Status& answer, const std::string& field,
                       const std::string& project_id) {
  const absl::Status s = FromGrpcStatus(answer);
  switch (s.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kResourceExhausted:
      return s;
    case absl::StatusCode::kNotFound:
      return absl::NotFoundError(absl::StrCat("project '", project_id, "' not found"));
    case absl::StatusCode::kInvalidArgument:
      return absl::InvalidArgumentError(absl::StrCat(field, ": ", s.message()));
    case absl::StatusCode::kPermissionDenied:
      return absl::PermissionDeniedError(
          absl::StrCat(field, ": naming a project needs permission 'project.get'"));
    default:
      return absl::UnavailableError(
          absl::StrCat("cannot check ", field, " with ProjectService (projects): ", s.message()));
  }
}

}  // namespace

absl::Status ProjectVisibility::CheckVisibleNow(const CallerCredentials& caller,
                                                absl::string_view field,
                                                absl::string_view project_id) {
  auto answer = std::make_shared<std::promise<absl::Status>>();
  auto done = answer->get_future();
  CheckVisible(caller, field, project_id,
               [answer](absl::Status s) { answer->set_value(std::move(s)); });
  return done.get();
}

void ProjectVisibility::CheckVisible(const CallerCredentials& caller, absl::string_view field,
                                     absl::string_view project_id, Done done) {
  FindOwner(caller, field, project_id,
            [done = std::move(done)](absl::StatusOr<std::string> owner) { done(owner.status()); });
}

void RemoteProjectVisibility::FindOwner(const CallerCredentials& caller, absl::string_view field,
                                        absl::string_view project_id, OwnerDone done) {
  struct Call {
    grpc::ClientContext context;
    projects::v1::GetProjectRequest request;
    projects::v1::GetProjectResponse response;
  };
  auto call = std::make_shared<Call>();
  call->context.set_deadline(std::chrono::system_clock::now() + deadline_);
  ForwardCredentials(call->context, caller);
  call->request.set_project_id(std::string(project_id));
  (*stub_).async()->GetProject(
      &call->context, &call->request, &call->response,
      [call, done = std::move(done), field = std::string(field)](grpc::Status answer) {
        absl::Status visible = Interpret(answer, field, call->request.project_id());
        if (!visible.ok()) return done(std::move(visible));
        done(call->response.project().owner_id());
      });
}

CallerCredentials CredentialsOf(const grpc::ServerContextBase& context) {
  const auto& metadata = context.client_metadata();
  auto value = [&](absl::string_view key) {
    auto it = metadata.find(grpc::string_ref(key.data(), key.size()));
    return it == metadata.end() ? std::string() : std::string(it->second.data(), it->second.size());
  };
  return {value("authorization"), value(kActForHeader)};
}

void ForwardCredentials(grpc::ClientContext& context, const CallerCredentials& caller) {
  if (!caller.authorization.empty()) context.AddMetadata("authorization", caller.authorization);
  if (!caller.act_for.empty()) context.AddMetadata(std::string(kActForHeader), caller.act_for);
}

}  // namespace orchestrator
