// The command table against the contracts: every command calls a real RPC
// of our services, every argument names a real request field, every column
// a real field of the listed items, and the groups the CLI promises exist.
#include <google/protobuf/descriptor.pb.h>

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/common/v1/options.pb.h"
#include "services/common/commands/command.h"

namespace orchestrator::commands {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

const FieldDescriptor* FieldAt(const Descriptor* d, const std::string& path) {
  const FieldDescriptor* f = nullptr;
  size_t start = 0;
  while (d != nullptr) {
    const size_t dot = path.find('.', start);
    f = d->FindFieldByName(path.substr(start, dot == std::string::npos ? dot : dot - start));
    if (f == nullptr || dot == std::string::npos) return f;
    d = f->message_type();
    start = dot + 1;
  }
  return nullptr;
}

TEST(CommandTableTest, EveryCommandCallsADeclaredRpcWithRealFields) {
  for (const auto& c : Commands()) {
    SCOPED_TRACE(c.path());
    ASSERT_NE(c.rpc.method, nullptr) << "no RPC of the service takes and returns these types";
    EXPECT_TRUE(c.rpc.method->options().HasExtension(orchestrator::common::v1::access));
    EXPECT_EQ(c.rpc.streaming(), c.rpc.method->server_streaming());
    for (const auto& p : c.params) {
      EXPECT_NE(FieldAt(c.rpc.method->input_type(), p.field), nullptr) << p.field;
    }
    if (!c.list_field.empty()) {
      const FieldDescriptor* list = c.rpc.method->output_type()->FindFieldByName(c.list_field);
      ASSERT_NE(list, nullptr) << c.list_field;
      ASSERT_TRUE(list->is_repeated());
      for (const auto& col : c.columns) {
        if (!col.format) {
          EXPECT_NE(FieldAt(list->message_type(), col.path), nullptr) << col.path;
        }
      }
    }
    if (!c.show_field.empty()) {
      EXPECT_NE(c.rpc.method->output_type()->FindFieldByName(c.show_field), nullptr);
    }
    if (!c.job_id_path.empty()) {
      const Descriptor* where =
          c.rpc.streaming() ? c.rpc.method->input_type() : c.rpc.method->output_type();
      const FieldDescriptor* f = FieldAt(where, c.job_id_path);
      ASSERT_NE(f, nullptr) << c.job_id_path;
      EXPECT_EQ(f->type(), FieldDescriptor::TYPE_STRING);
    }
    if (c.needs_confirm) {
      EXPECT_NE(c.rpc.method->input_type()->FindFieldByName("confirm"), nullptr);
    }
  }
}

TEST(CommandTableTest, TheGroupsAndCommandsTheCliPromisesAreThere) {
  std::set<std::string> paths;
  for (const auto& c : Commands()) {
    EXPECT_TRUE(paths.insert(c.path()).second) << "twice: " << c.path();
  }
  for (const char* p : {"project create",
                        "project list",
                        "project get",
                        "project update",
                        "project set-secret",
                        "project secrets",
                        "project delete",
                        "jobs list",
                        "jobs get",
                        "jobs events",
                        "jobs watch",
                        "jobs cancel",
                        "jobs retry",
                        "engineering trigger",
                        "engineering status",
                        "engineering latest",
                        "engineering runs",
                        "engineering usage",
                        "deploy check",
                        "deploy trigger",
                        "deploy status",
                        "deploy logs",
                        "deploy rollback",
                        "deploy releases",
                        "infra servers",
                        "infra server",
                        "infra register",
                        "infra provision",
                        "infra allocate",
                        "infra allocations",
                        "infra release",
                        "diagnose logs",
                        "diagnose health",
                        "diagnose errors",
                        "session list",
                        "session send",
                        "session pause",
                        "session resume",
                        "session end",
                        "scheduler tasks",
                        "scheduler task",
                        "scheduler run",
                        "scheduler pause",
                        "scheduler resume",
                        "scheduler schedule",
                        "scheduler runs",
                        "admin users",
                        "admin tokens",
                        "admin steps",
                        "admin trigger-step",
                        "admin clear-project",
                        "respond",
                        "finish"}) {
    EXPECT_TRUE(paths.count(p)) << "missing: " << p;
  }
}

TEST(CommandTableTest, PermissionsComeFromTheContract) {
  EXPECT_EQ(FindCommand("project", "create")->permission(), "project.create");
  EXPECT_EQ(FindCommand("deploy", "trigger")->permission(), "deploy.trigger");
  EXPECT_EQ(FindCommand("diagnose", "logs")->permission(), "diagnose.log.get");
  EXPECT_EQ(FindCommand("", "finish")->permission(), "agent.task.finish");
  EXPECT_EQ(FindCommand("", "whoami")->permission(), "");  // any authenticated caller
  EXPECT_EQ(FindCommand("jobs", "watch")->rpc_path(), "orchestrator.jobs.v1.JobService/WatchJob");
  EXPECT_EQ(FindCommand("engineering", "usage")->permission(), "engineering.usage.get");
  EXPECT_EQ(FindCommand("scheduler", "tasks")->rpc_path(),
            "orchestrator.scheduler.v1.SchedulerService/ListTasks");
}

TEST(CommandTableTest, UsageShowsArgumentsFlagsFollowAndConfirm) {
  EXPECT_EQ(FindCommand("deploy", "trigger")->usage(),
            "orchestrator deploy trigger PROJECT [--commit VALUE] [--server VALUE] [--follow]");
  EXPECT_EQ(FindCommand("infra", "release")->usage(),
            "orchestrator infra release ALLOCATION [--force] --confirm");
  EXPECT_EQ(FindCommand("engineering", "trigger")->usage(),
            "orchestrator engineering trigger PROJECT TASK [--agent VALUE] "
            "[--max-iterations VALUE] [--follow]");
}

}  // namespace
}  // namespace orchestrator::commands
