#include "services/common/rpc/method_access.h"

#include "absl/strings/str_cat.h"
#include "orchestrator/common/v1/options.pb.h"
#include "services/common/auth/principal.h"

namespace orchestrator {

absl::StatusOr<MethodAccessTable> MethodAccessTable::FromServices(
    const std::vector<const google::protobuf::ServiceDescriptor*>& services) {
  MethodAccessTable table;
  for (const auto* service : services) {
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* method = service->method(i);
      const auto& access = method->options().GetExtension(common::v1::access);
      if (access.permission().empty() != access.any_authenticated()) {
        // Exactly one of the two must be declared.
        if (access.permission().empty()) {
          return absl::FailedPreconditionError(
              absl::StrCat("contract bug: ", method->full_name(),
                           " declares no (orchestrator.common.v1.access)"));
        }
        return absl::FailedPreconditionError(
            absl::StrCat("contract bug: ", method->full_name(),
                         " declares both a permission and any_authenticated"));
      }
      if (!access.permission().empty() && !IsValidPermissionPattern(access.permission())) {
        return absl::FailedPreconditionError(absl::StrCat("contract bug: ", method->full_name(),
                                                          " declares malformed permission '",
                                                          access.permission(), "'"));
      }
      table.methods_[absl::StrCat("/", service->full_name(), "/", method->name())] = MethodAccess{
          access.permission(), access.any_authenticated(), method->input_type()->full_name(),
          method->client_streaming(), access.mesh_only()};
    }
  }
  return table;
}

const MethodAccess* MethodAccessTable::Find(absl::string_view method_path) const {
  auto it = methods_.find(method_path);
  return it == methods_.end() ? nullptr : &it->second;
}

}  // namespace orchestrator
