// What the provision job reads of ansible-playbook's JSON-lines output
// (ansible.posix.jsonl, as Debian 12's Ansible 7.7 writes it), and how a
// server's address becomes an ssh destination.
#include "services/infra/adapters/ansible_events.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "services/infra/domain/servers.h"

namespace orchestrator::infra {
namespace {
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kTaskStart[] =
    R"({"_event":"v2_playbook_on_task_start","hosts":{},"task":{"id":"1","name":"Create the deploy user"}})";
constexpr char kFailed[] =
    R"({"_event":"v2_runner_on_failed","hosts":{"server":{"action":"ansible.builtin.apt","changed":false,"failed":true,"msg":"no available installation candidate for caddy"}},"task":{"id":"2","name":"Install the container engine and Caddy"}})";
constexpr char kModuleFailure[] =
    R"({"_event":"v2_runner_on_failed","hosts":{"server":{"failed":true,"module_stderr":"/bin/sh: 1: sudo: not found\n","module_stdout":"","msg":"MODULE FAILURE\nSee stdout/stderr for the exact error","rc":127}},"task":{"id":"1","name":"Look up the installed packages"}})";
constexpr char kUnreachable[] =
    R"({"_event":"v2_runner_on_unreachable","hosts":{"server":{"msg":"Failed to connect to the host via ssh: Connection refused","unreachable":true}},"task":{"id":"3","name":"Create the deploy user"}})";
constexpr char kStats[] =
    R"({"_event":"v2_playbook_on_stats","custom_stats":{},"global_custom_stats":{},"stats":{"server":{"changed":2,"failures":0,"ignored":0,"ok":4,"rescued":0,"skipped":1,"unreachable":0}}})";

TEST(AnsibleEventReaderTest, TasksAreToldAsTheyStartAndTheStatsAreCounted) {
  std::vector<std::string> told;
  AnsibleEventReader reader([&](const std::string& task) { told.push_back(task); });
  reader.Line("[WARNING]: not an event");
  reader.Line("");
  reader.Line("{not json");
  reader.Line(kTaskStart);
  reader.Line(kStats);
  EXPECT_THAT(told, ElementsAre("Create the deploy user"));
  const PlaybookReport& report = reader.report();
  EXPECT_THAT(report.tasks, ElementsAre("Create the deploy user"));
  EXPECT_TRUE(report.failed_task.empty());
  ASSERT_EQ(report.hosts.count("server"), 1u);
  EXPECT_EQ(report.hosts.at("server").ok, 4);
  EXPECT_EQ(report.hosts.at("server").changed, 2);
  EXPECT_EQ(report.hosts.at("server").skipped, 1);
}

TEST(AnsibleEventReaderTest, TheFirstFailureNamesItsTaskAndWhy) {
  AnsibleEventReader reader(nullptr);
  reader.Line(kFailed);
  reader.Line(kUnreachable);  // later: the first one is what stopped it
  EXPECT_EQ(reader.report().failed_task, "Install the container engine and Caddy");
  EXPECT_EQ(reader.report().failure, "no available installation candidate for caddy");
  EXPECT_FALSE(reader.report().unreachable);

  AnsibleEventReader module(nullptr);
  module.Line(kModuleFailure);
  EXPECT_EQ(module.report().failed_task, "Look up the installed packages");
  EXPECT_THAT(module.report().failure, HasSubstr("sudo: not found"));

  AnsibleEventReader gone(nullptr);
  gone.Line(kUnreachable);
  EXPECT_TRUE(gone.report().unreachable);
  EXPECT_THAT(gone.report().failure, HasSubstr("Connection refused"));
}

TEST(SshAddressTest, HostsPortsAndWhatIsRefused) {
  auto plain = ParseSshAddress("web-1.example.com");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->host, "web-1.example.com");
  EXPECT_EQ(plain->port, 22);
  auto ported = ParseSshAddress("203.0.113.7:2222");
  ASSERT_TRUE(ported.ok());
  EXPECT_EQ(ported->port, 2222);
  auto v6 = ParseSshAddress("[2001:db8::1]:2200");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "2001:db8::1");
  EXPECT_EQ(v6->port, 2200);
  EXPECT_TRUE(ParseSshAddress("2001:db8::1").ok());
  for (const char* bad :
       {"", "-oProxyCommand=x", "a b", "host:", "host:0", "host:65536", "host:22:22", "[::1",
        "[::1]x", "[zz]:1", "h;id", "$(id)", "{{x}}", "host:+22"}) {
    auto parsed = ParseSshAddress(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    EXPECT_THAT(parsed.status().message(), HasSubstr("server.address")) << bad;
  }
}

}  // namespace
}  // namespace orchestrator::infra
