#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace google::protobuf {
class ServiceDescriptor;
}

namespace orchestrator {

// What an RPC requires, as declared in its contract
// (option (orchestrator.common.v1.access)).
struct MethodAccess {
  std::string permission;  // empty when any_authenticated
  bool any_authenticated = false;
  std::string request_type;  // full name of the request message
  bool client_streaming = false;
  bool mesh_only = false;  // callable with the mesh credential only
};

// "/pkg.Service/Method" → access, for the services a process hosts. Built
// once at start-up from the compiled descriptors; a method without a
// declaration is a contract bug and refuses to start.
class MethodAccessTable final {
 public:
  static absl::StatusOr<MethodAccessTable> FromServices(
      const std::vector<const google::protobuf::ServiceDescriptor*>& services);

  // nullptr for methods outside our contracts (health, reflection), which
  // need no token.
  const MethodAccess* Find(absl::string_view method_path) const;
  size_t size() const { return methods_.size(); }

 private:
  absl::flat_hash_map<std::string, MethodAccess> methods_;
};

}  // namespace orchestrator
