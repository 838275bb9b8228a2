#include "services/agents/peers/project_secret_source.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/peers/mesh_call.h"
#include "services/common/status/status.h"

namespace orchestrator::agents {

absl::StatusOr<std::string> ProjectSecretSource::Reveal(const Principal& caller,
                                                        const std::string& project_id,
                                                        const std::string& name) {
  absl::call_once(once_, [this] { stub_ = make_stub_(); });
  projects::v1::RevealSecretsRequest req;
  req.set_project_id(project_id);
  req.add_names(name);
  grpc::ClientContext ctx;
  PrepareMeshCall(ctx, *mesh_, deadline_, caller.user_id);
  projects::v1::RevealSecretsResponse resp;
  absl::Status s =
      FromPeerStatus(stub_->RevealSecrets(&ctx, req, &resp), "ProjectService (projects)");
  if (absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s)) {
    return absl::Status(s.code(), absl::StrCat("cannot reveal the secret: ", s.message()));
  }
  if (!s.ok()) {
    // "names[0]: …" names the request this adapter made, not the caller's.
    absl::string_view message = s.message();
    if (absl::StartsWith(message, "names[0]: ")) message.remove_prefix(10);
    return absl::Status(s.code(), message);
  }
  auto it = resp.values().find(name);
  if (it == resp.values().end()) {
    return absl::InternalError("ProjectService answered without the secret asked for");
  }
  return it->second;
}

absl::StatusOr<std::string> ProjectSecretSource::RepositoryOf(const Principal& caller,
                                                              const std::string& project_id) {
  absl::call_once(once_, [this] { stub_ = make_stub_(); });
  projects::v1::GetProjectRequest req;
  req.set_project_id(project_id);
  grpc::ClientContext ctx;
  PrepareMeshCall(ctx, *mesh_, deadline_, caller.user_id);
  projects::v1::GetProjectResponse resp;
  absl::Status s = FromPeerStatus(stub_->GetProject(&ctx, req, &resp), "ProjectService (projects)");
  if (absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s)) {
    return absl::Status(s.code(),
                        absl::StrCat("cannot find the project's repository: ", s.message()));
  }
  if (!s.ok()) return s;
  return resp.project().repository_url();
}

}  // namespace orchestrator::agents
