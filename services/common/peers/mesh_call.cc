#include "services/common/peers/mesh_call.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace orchestrator {

void PrepareMeshCall(grpc::ClientContext& context, const MeshCredential& mesh,
                     std::chrono::milliseconds timeout, absl::string_view act_for) {
  context.AddMetadata("authorization", absl::StrCat("Bearer ", mesh.value()));
  if (!act_for.empty()) context.AddMetadata(std::string(kActForHeader), std::string(act_for));
  context.set_deadline(std::chrono::system_clock::now() + timeout);
}

}  // namespace orchestrator
