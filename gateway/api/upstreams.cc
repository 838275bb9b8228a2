#include "gateway/api/upstreams.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gateway/routing/route_table.h"

namespace orchestrator::gateway {
namespace {

// "orchestrator.projects.v1.ProjectService" → "projects".
absl::string_view ComponentOf(absl::string_view service_full_name) {
  std::vector<absl::string_view> parts = absl::StrSplit(service_full_name, '.');
  return parts.size() > 1 ? parts[1] : "";
}

std::shared_ptr<grpc::Channel> NewChannel(const std::string& address) {
  // A proxy does not retry on its callers' behalf (that is theirs to decide,
  // with their request ids), and gRPC's retry filter costs every call.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

}  // namespace

absl::StatusOr<Upstreams> Upstreams::Create(const std::string& default_address,
                                            absl::string_view overrides) {
  std::set<std::string> components;
  for (const auto* s : PublicServices())
    components.insert(std::string(ComponentOf(s->full_name())));
  Upstreams u;
  if (default_address.empty()) return absl::InvalidArgumentError("--upstream: required");
  u.default_ = NewChannel(default_address);
  for (absl::string_view entry : absl::StrSplit(overrides, ',', absl::SkipWhitespace())) {
    entry = absl::StripAsciiWhitespace(entry);
    const size_t eq = entry.find('=');
    if (eq == absl::string_view::npos || eq == 0 || eq + 1 == entry.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--upstreams: '", entry, "' is not component=host:port"));
    }
    const std::string component(entry.substr(0, eq));
    if (!components.count(component)) {
      return absl::InvalidArgumentError(absl::StrCat("--upstreams: unknown component '", component,
                                                     "'; one of ",
                                                     absl::StrJoin(components, ", ")));
    }
    u.by_component_[component] = NewChannel(std::string(entry.substr(eq + 1)));
  }
  return u;
}

std::shared_ptr<grpc::Channel> Upstreams::For(absl::string_view service_full_name) const {
  auto it = by_component_.find(ComponentOf(service_full_name));
  return it == by_component_.end() ? default_ : it->second;
}

std::shared_ptr<grpc::Channel> Upstreams::For(
    const google::protobuf::ServiceDescriptor* service) const {
  return For(service->full_name());
}

std::vector<std::shared_ptr<grpc::Channel>> Upstreams::All() const {
  std::vector<std::shared_ptr<grpc::Channel>> all = {default_};
  for (const auto& [component, channel] : by_component_) all.push_back(channel);
  return all;
}

}  // namespace orchestrator::gateway
