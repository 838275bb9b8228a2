// Every RPC in every contract declares who may call it, and every RPC meant
// for people or the gateway carries an HTTP route: checked over the compiled
// descriptor set, so a new RPC without them fails here.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include <fstream>
#include <set>

#include "google/api/annotations.pb.h"
#include "gtest/gtest.h"
#include "orchestrator/common/v1/options.pb.h"
#include "services/common/auth/principal.h"
#include "services/common/rpc/method_access.h"

namespace orchestrator {
namespace {

std::vector<const google::protobuf::ServiceDescriptor*> AllOurServices() {
  google::protobuf::FileDescriptorSet set;
  std::ifstream in(ORCHESTRATOR_DESCRIPTOR_SET, std::ios::binary);
  EXPECT_TRUE(set.ParseFromIstream(&in)) << ORCHESTRATOR_DESCRIPTOR_SET;
  std::vector<const google::protobuf::ServiceDescriptor*> services;
  for (const auto& file : set.file()) {
    if (file.name().rfind("orchestrator/", 0) != 0) continue;
    const auto* fd =
        google::protobuf::DescriptorPool::generated_pool()->FindFileByName(file.name());
    EXPECT_NE(fd, nullptr) << file.name() << " is not compiled into orchestrator::proto";
    if (fd == nullptr) continue;
    for (int i = 0; i < fd->service_count(); ++i) services.push_back(fd->service(i));
  }
  return services;
}

TEST(Contracts, EveryComponentHasAService) {
  std::set<std::string> names;
  for (const auto* s : AllOurServices()) names.insert(s->full_name());
  for (const char* expected :
       {"orchestrator.projects.v1.ProjectService", "orchestrator.jobs.v1.JobService",
        "orchestrator.sessions.v1.SessionService", "orchestrator.agents.v1.AgentService",
        "orchestrator.agents.v1.RunnerService", "orchestrator.scaffolder.v1.ScaffolderService",
        "orchestrator.engineering.v1.EngineeringService", "orchestrator.deploy.v1.DeployService",
        "orchestrator.infra.v1.InfraService", "orchestrator.scheduler.v1.SchedulerService",
        "orchestrator.admin.v1.AdminService"}) {
    EXPECT_TRUE(names.contains(expected)) << expected;
  }
}

TEST(Contracts, EveryRpcDeclaresAWellFormedPermission) {
  auto services = AllOurServices();
  ASSERT_GE(services.size(), 11u);
  for (const auto* service : services) {
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* m = service->method(i);
      const auto& access = m->options().GetExtension(common::v1::access);
      EXPECT_TRUE(access.any_authenticated() || IsValidPermissionPattern(access.permission()))
          << m->full_name();
      EXPECT_EQ(access.permission().find('*'), std::string::npos) << m->full_name();
    }
  }
  EXPECT_TRUE(MethodAccessTable::FromServices(services).ok());
}

TEST(Contracts, EveryPublicRpcHasAnHttpRoute) {
  std::set<std::pair<std::string, std::string>> routes;
  for (const auto* service : AllOurServices()) {
    if (service->full_name() == "orchestrator.agents.v1.RunnerService") continue;  // internal
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* m = service->method(i);
      // The mesh's own RPCs are for its components only: no REST route.
      if (m->options().GetExtension(common::v1::access).mesh_only()) {
        EXPECT_FALSE(m->options().HasExtension(google::api::http)) << m->full_name();
        continue;
      }
      ASSERT_TRUE(m->options().HasExtension(google::api::http)) << m->full_name();
      const auto& rule = m->options().GetExtension(google::api::http);
      std::string verb = rule.has_get()       ? "GET"
                         : rule.has_post()    ? "POST"
                         : rule.has_put()     ? "PUT"
                         : rule.has_patch()   ? "PATCH"
                         : rule.has_delete_() ? "DELETE"
                                              : "?";
      std::string path = rule.get() + rule.post() + rule.put() + rule.patch() + rule.delete_();
      EXPECT_TRUE(routes.insert({verb, path}).second)
          << "route used twice: " << verb << " " << path;
    }
  }
}

TEST(MethodAccessTable, RefusesAContractWithoutADeclaration) {
  // google.api's own service-less files aside, a method without the option
  // must stop the server from starting.
  google::protobuf::DescriptorPool pool;
  google::protobuf::FileDescriptorProto file;
  file.set_name("bad.proto");
  file.set_package("bad.v1");
  file.add_message_type()->set_name("R");
  auto* svc = file.add_service();
  svc->set_name("BadService");
  auto* m = svc->add_method();
  m->set_name("Do");
  m->set_input_type(".bad.v1.R");
  m->set_output_type(".bad.v1.R");
  const auto* fd = pool.BuildFile(file);
  ASSERT_NE(fd, nullptr);
  auto table = MethodAccessTable::FromServices({fd->service(0)});
  EXPECT_EQ(table.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(table.status().message().find("bad.v1.BadService.Do"), absl::string_view::npos);
}

}  // namespace
}  // namespace orchestrator
