#pragma once

#include <google/protobuf/descriptor.h>
#include <grpcpp/channel.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace orchestrator::gateway {

// Where each service of the mesh is reached: one address for all (the
// one-process mesh), or one per component when the mesh is split (the Helm
// chart). A component is named as orchestratord's --services names it, which
// is its contracts' package: orchestrator.<component>.v1.
class Upstreams {
 public:
  // `overrides`: "projects=host:port,jobs=host:port"; INVALID_ARGUMENT names
  // an unknown component or a malformed entry.
  static absl::StatusOr<Upstreams> Create(const std::string& default_address,
                                          absl::string_view overrides);

  std::shared_ptr<grpc::Channel> For(const google::protobuf::ServiceDescriptor* service) const;
  std::shared_ptr<grpc::Channel> For(absl::string_view service_full_name) const;
  // Every distinct channel, for readiness.
  std::vector<std::shared_ptr<grpc::Channel>> All() const;

 private:
  std::shared_ptr<grpc::Channel> default_;
  std::map<std::string, std::shared_ptr<grpc::Channel>, std::less<>> by_component_;
};

}  // namespace orchestrator::gateway
