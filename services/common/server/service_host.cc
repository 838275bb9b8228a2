#include "services/common/server/service_host.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/rpc/rpc_interceptor.h"
#include "spdlog/spdlog.h"

namespace orchestrator {

ServiceHost::ServiceHost(HostOptions options) : options_(std::move(options)) {}

ServiceHost::~ServiceHost() { Shutdown(); }

void ServiceHost::Register(grpc::Service* service, absl::string_view full_name) {
  services_.emplace_back(service, std::string(full_name));
}

absl::Status ServiceHost::Start() {
  TokenVerifierPtr verifier = token_verifier();
  if (verifier == nullptr) return absl::FailedPreconditionError("no token verifier configured");
  std::vector<const google::protobuf::ServiceDescriptor*> descriptors;
  for (const auto& [service, name] : services_) {
    const auto* descriptor =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    if (descriptor == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat("no compiled contract for ", name));
    }
    descriptors.push_back(descriptor);
  }
  auto table = MethodAccessTable::FromServices(descriptors);
  if (!table.ok()) return table.status();
  auto access = std::make_shared<const MethodAccessTable>(std::move(*table));

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  std::string listen = options_.listen;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port_);
  for (const auto& also : options_.also_listen) {
    builder.AddListeningPort(also, grpc::InsecureServerCredentials());
  }
  for (const auto& [service, name] : services_) builder.RegisterService(service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
  factories.push_back(std::make_unique<RpcInterceptorFactory>(
      access, verifier, options_.mesh_credential, options_.rate_limits));
  builder.experimental().SetInterceptorCreators(std::move(factories));
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || (port_ == 0 && !absl::StartsWith(listen, "unix:"))) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen));
  }
  auto* health = server_->GetHealthCheckService();
  health->SetServingStatus(true);
  for (const auto& [service, name] : services_) health->SetServingStatus(name, true);
  spdlog::info("serving address={} services={} methods={}", address(), services_.size(),
               access->size());
  return absl::OkStatus();
}

std::string ServiceHost::address() const {
  if (absl::StartsWith(options_.listen, "unix:")) return options_.listen;
  size_t colon = options_.listen.rfind(':');
  return absl::StrCat(options_.listen.substr(0, colon), ":", port_);
}

std::shared_ptr<grpc::Channel> ServiceHost::InProcessChannel() {
  return server_->InProcessChannel(grpc::ChannelArguments());
}

void ServiceHost::StopServing() {
  if (server_ != nullptr) server_->GetHealthCheckService()->Shutdown();
}

void ServiceHost::Shutdown() {
  Shutdown(std::chrono::system_clock::now() + options_.drain_deadline);
}

void ServiceHost::Shutdown(std::chrono::system_clock::time_point deadline) {
  if (server_ == nullptr || shut_down_) return;
  shut_down_ = true;
  server_->GetHealthCheckService()->Shutdown();  // every component → NOT_SERVING
  spdlog::info("draining deadline_ms={}", std::chrono::duration_cast<std::chrono::milliseconds>(
                                              deadline - std::chrono::system_clock::now())
                                              .count());
  server_->Shutdown(deadline);
  spdlog::info("stopped");
}

void ServiceHost::Wait() {
  if (server_ != nullptr) server_->Wait();
}

}  // namespace orchestrator
