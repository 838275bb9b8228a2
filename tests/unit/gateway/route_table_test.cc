// The gateway's routes come from the contracts' google.api.http options:
// every annotated RPC gets one, and requests find theirs by method and path.
#include "gateway/routing/route_table.h"

#include <google/protobuf/descriptor.h>

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/common/v1/options.pb.h"
#include "orchestrator/jobs/v1/jobs.pb.h"
#include "orchestrator/projects/v1/projects.pb.h"
#include "services/common/status/status.h"

namespace orchestrator::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

std::vector<const google::protobuf::ServiceDescriptor*> OurServices() { return PublicServices(); }

TEST(PublicServicesTest, AreTheMeshsTenServices) {
  std::set<std::string> names;
  for (const auto* s : PublicServices()) {
    ASSERT_NE(s, nullptr);
    names.insert(s->full_name());
  }
  EXPECT_EQ(
      names,
      (std::set<std::string>{
          "orchestrator.admin.v1.AdminService", "orchestrator.projects.v1.ProjectService",
          "orchestrator.jobs.v1.JobService", "orchestrator.sessions.v1.SessionService",
          "orchestrator.agents.v1.AgentService", "orchestrator.scaffolder.v1.ScaffolderService",
          "orchestrator.engineering.v1.EngineeringService", "orchestrator.deploy.v1.DeployService",
          "orchestrator.infra.v1.InfraService", "orchestrator.scheduler.v1.SchedulerService"}));
}

TEST(PathTemplateTest, LiteralsVariablesAndVerbs) {
  auto t = ParsePathTemplate("/v1/projects/{project.id}:deploy");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->segments.size(), 3u);
  EXPECT_EQ(t->segments[0].literal, "v1");
  EXPECT_EQ(t->segments[2].field, "project.id");
  EXPECT_EQ(t->verb, "deploy");
  EXPECT_EQ(ParsePathTemplate("/v1/{name=*}")->segments[1].field, "name");
  for (const char* bad : {"v1/projects", "/v1/{project", "/v1/{Project}", "/v1//x",
                          "/v1/x:", "/v1/{name=projects/*}"}) {
    EXPECT_FALSE(ParsePathTemplate(bad).ok()) << bad;
  }
}

TEST(RouteTableTest, EveryAnnotatedRpcOfTheContractsHasARoute) {
  auto table = RouteTable::FromServices(OurServices());
  ASSERT_TRUE(table.ok()) << table.status();
  std::set<std::string> methods;
  int annotated = 0;
  for (const auto* s : OurServices()) {
    for (int i = 0; i < s->method_count(); ++i) {
      // The mesh's own RPCs have no REST route (nor may a gateway call them).
      if (!s->method(i)->options().GetExtension(common::v1::access).mesh_only()) annotated++;
    }
  }
  for (const auto& r : table->routes()) methods.insert(r.method->full_name());
  EXPECT_EQ(static_cast<int>(table->routes().size()), annotated);
  EXPECT_TRUE(methods.count("orchestrator.jobs.v1.JobService.CancelJob"));
  EXPECT_TRUE(methods.count("orchestrator.projects.v1.ProjectService.UpdateProject"));
}

TEST(RouteTableTest, RequestsFindTheirRouteWithTheirBindings) {
  auto table = RouteTable::FromServices(OurServices());
  ASSERT_TRUE(table.ok());
  auto get = table->Find("GET", "/v1/projects/prj_1");
  ASSERT_TRUE(get.ok()) << get.status();
  EXPECT_EQ(get->route->method->name(), "GetProject");
  EXPECT_THAT(get->bindings, ElementsAre(Pair("project_id", "prj_1")));

  auto cancel = table->Find("POST", "/v1/jobs/job_9:cancel");
  ASSERT_TRUE(cancel.ok()) << cancel.status();
  EXPECT_EQ(cancel->route->method->name(), "CancelJob");
  EXPECT_EQ(cancel->route->body, "*");
  EXPECT_THAT(cancel->bindings, ElementsAre(Pair("job_id", "job_9")));

  auto patch = table->Find("PATCH", "/v1/projects/prj%5F2");
  ASSERT_TRUE(patch.ok()) << patch.status();
  EXPECT_EQ(patch->route->body, "project");
  EXPECT_THAT(patch->bindings, ElementsAre(Pair("project.id", "prj_2")));

  // A collection and its custom method do not collide.
  EXPECT_EQ(table->Find("GET", "/v1/jobs")->route->method->name(), "ListJobs");
  EXPECT_EQ(table->Find("GET", "/v1/jobs:watch")->route->method->name(), "WatchJobs");
  EXPECT_EQ(table->Find("GET", "/v1/jobs/job_1:watch")->route->method->name(), "WatchJob");
}

TEST(RouteTableTest, UnknownPathsAre404AndWrongMethods405) {
  auto table = RouteTable::FromServices(OurServices());
  ASSERT_TRUE(table.ok());
  auto none = table->Find("GET", "/v1/nothing/here");
  EXPECT_EQ(HttpStatusFor(none.status().code()), 404);
  auto wrong = table->Find("DELETE", "/v1/jobs/job_1:cancel");
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(wrong.status().message(), HasSubstr("use POST"));
  EXPECT_EQ(table->Find("GET", "/v1/projects/%zz").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(table->Find("GET", "/v1/projects/").status().code(), absl::StatusCode::kNotFound);
}

TEST(HttpStatusTest, CodesMapAsGoogleRpcDocumentsThem) {
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kOk), 200);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kInternal), 500);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kUnimplemented), 501);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kDeadlineExceeded), 504);
}

}  // namespace
}  // namespace orchestrator::gateway
