#pragma once

#include <grpcpp/client_context.h>
#include <grpcpp/server_context.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "services/common/peers/lazy_stub.h"

namespace orchestrator {

// What a call was made with, to make another call as the same caller: its
// "authorization" metadata and, for the mesh acting for a user, whom for.
struct CallerCredentials {
  std::string authorization;
  std::string act_for;
};
CallerCredentials CredentialsOf(const grpc::ServerContextBase& context);
// Sends `caller`'s credentials on `context`.
void ForwardCredentials(grpc::ClientContext& context, const CallerCredentials& caller);

// Whether a caller may see a project, for components that take a project id
// but do not own projects. Asks ProjectService (its stub: in-process or
// remote, with a deadline) with the caller's own credentials, so the answer
// is exactly what the caller would get from GetProject.
class ProjectVisibility {
 public:
  using Done = std::function<void(absl::Status)>;
  using OwnerDone = std::function<void(absl::StatusOr<std::string> owner_id)>;
  virtual ~ProjectVisibility() = default;

  // Calls `done` (possibly on another thread, never blocking the caller) with
  // OK when the caller whose credentials are `caller`
  // may see `project_id`; NOT_FOUND for a project that does not exist or is
  // another owner's (the same answer); PERMISSION_DENIED naming `field` when
  // the caller may not read projects at all; UNAVAILABLE when ProjectService
  // cannot be asked.
  void CheckVisible(const CallerCredentials& caller, absl::string_view field,
                    absl::string_view project_id, Done done);

  // The same check, answering the project's owner when the caller may see
  // it: for a component that then acts for the owner as the mesh (an admin
  // looking at another user's project included).
  virtual void FindOwner(const CallerCredentials& caller, absl::string_view field,
                         absl::string_view project_id, OwnerDone done) = 0;

  // The same, waiting for the answer: for bodies that already run on their
  // component's own executor (never on ProjectService's).
  absl::Status CheckVisibleNow(const CallerCredentials& caller, absl::string_view field,
                               absl::string_view project_id);
};

using ProjectVisibilityPtr = std::shared_ptr<ProjectVisibility>;

class RemoteProjectVisibility final : public ProjectVisibility {
 public:
  using StubPtr = LazyStub<projects::v1::ProjectService>::StubPtr;
  // `make_stub` runs once, at the first check: a server's in-process channel
  // exists only once it serves.
  RemoteProjectVisibility(std::function<StubPtr()> make_stub, std::chrono::milliseconds deadline)
      : stub_(std::move(make_stub)), deadline_(deadline) {}

  void FindOwner(const CallerCredentials& caller, absl::string_view field,
                 absl::string_view project_id, OwnerDone done) override;

 private:
  LazyStub<projects::v1::ProjectService> stub_;
  const std::chrono::milliseconds deadline_;
};

}  // namespace orchestrator
