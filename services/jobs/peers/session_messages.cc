#include "services/jobs/peers/session_messages.h"

#include "services/common/peers/mesh_call.h"
#include "services/common/status/status.h"

namespace orchestrator::jobs {

absl::StatusOr<std::vector<sessions::v1::SessionMessage>> SessionMessagesOverStub::Lookup(
    const std::string& owner_id, const std::vector<std::string>& ids) {
  // The contract's bound on one request.
  constexpr size_t kPerCall = 1000;
  std::vector<sessions::v1::SessionMessage> out;
  for (size_t from = 0; from < ids.size(); from += kPerCall) {
    sessions::v1::LookupMessagesRequest req;
    req.set_owner_id(owner_id);
    for (size_t i = from; i < std::min(ids.size(), from + kPerCall); ++i) {
      req.add_message_ids(ids[i]);
    }
    grpc::ClientContext ctx;
    PrepareMeshCall(ctx, *mesh_, deadline_);
    sessions::v1::LookupMessagesResponse resp;
    if (auto s = FromPeerStatus((*stub_).LookupMessages(&ctx, req, &resp), "SessionService");
        !s.ok()) {
      return s;
    }
    for (auto& m : *resp.mutable_messages()) out.push_back(std::move(m));
  }
  return out;
}

}  // namespace orchestrator::jobs
