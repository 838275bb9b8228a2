#include "services/common/rpc/call_context.h"

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace orchestrator {
namespace {

struct Registry {
  absl::Mutex mu;
  // Calls in flight, keyed by their server context.
  absl::flat_hash_map<const grpc::ServerContextBase*, CallInfo> calls ABSL_GUARDED_BY(mu);
};

Registry& Calls() {
  static Registry* registry = new Registry;  // outlives every call, never destroyed
  return *registry;
}

}  // namespace

absl::StatusOr<Principal> CallerOf(const grpc::ServerContextBase* context) {
  Registry& r = Calls();
  absl::MutexLock lock(&r.mu);
  auto it = r.calls.find(context);
  if (it == r.calls.end()) return absl::InternalError("call was not seen by the RPC interceptor");
  return it->second.caller;
}

namespace internal {

void RegisterCall(const grpc::ServerContextBase* context, CallInfo info) {
  Registry& r = Calls();
  absl::MutexLock lock(&r.mu);
  r.calls.insert_or_assign(context, std::move(info));
}

void UnregisterCall(const grpc::ServerContextBase* context) {
  Registry& r = Calls();
  absl::MutexLock lock(&r.mu);
  r.calls.erase(context);
}

void RefuseCall(const grpc::ServerContextBase* context, absl::Status refusal) {
  Registry& r = Calls();
  absl::MutexLock lock(&r.mu);
  auto it = r.calls.find(context);
  if (it != r.calls.end() && it->second.caller.ok()) it->second.caller = std::move(refusal);
}

}  // namespace internal
}  // namespace orchestrator
