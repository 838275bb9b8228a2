// The command line itself, before any server is involved: help, usage
// errors with exit status 2, and values checked against the contract.
#include <sstream>

#include "clients/cli/app.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace orchestrator::cli {
namespace {

using ::testing::HasSubstr;

struct Result {
  int status;
  std::string out, err;
};

Result RunCli(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  Environment env;
  env.vars["ORCHESTRATOR_ADDR"] = "127.0.0.1:1";  // nothing listens: no call may be needed
  const int status = Run(args, env, out, err);
  return {status, out.str(), err.str()};
}

TEST(UsageTest, HelpAtEveryLevel) {
  auto top = RunCli({"--help"});
  EXPECT_EQ(top.status, 0);
  EXPECT_THAT(top.out, HasSubstr("deploy       readiness, deploys, releases, rollbacks"));
  EXPECT_THAT(top.out, HasSubstr("5  not allowed (UNAUTHENTICATED, PERMISSION_DENIED)"));
  auto group = RunCli({"deploy", "--help"});
  EXPECT_EQ(group.status, 0);
  EXPECT_THAT(group.out, HasSubstr("rollback"));
  auto command = RunCli({"deploy", "trigger", "-h"});
  EXPECT_EQ(command.status, 0);
  EXPECT_THAT(command.out, HasSubstr("usage: orchestrator deploy trigger PROJECT"));
  EXPECT_THAT(command.out, HasSubstr("needs permission 'deploy.trigger'"));
  for (const auto* g :
       {"project", "jobs", "engineering", "infra", "diagnose", "session", "scheduler", "admin"}) {
    EXPECT_EQ(RunCli({g, "--help"}).status, 0) << g;
  }
}

TEST(UsageTest, BadCommandLinesExitTwoAndSayWhy) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  for (const auto& c : std::vector<Case>{
           {{}, "missing command"},
           {{"deplyo"}, "unknown command 'deplyo'"},
           {{"deploy"}, "missing command after 'deploy'"},
           {{"deploy", "launch"}, "unknown command 'deploy launch'"},
           {{"deploy", "trigger"}, "missing PROJECT"},
           {{"deploy", "trigger", "p1", "p2"}, "unexpected argument 'p2'"},
           {{"deploy", "trigger", "p1", "--bogus", "x"}, "unknown flag --bogus"},
           {{"deploy", "trigger", "p1", "--commit"}, "--commit needs a value"},
           {{"jobs", "list", "--state", "done"}, "--state: 'done' is not one of: queued, running"},
           {{"jobs", "list", "--page-size", "ten"}, "--page-size: expected a whole number"},
           {{"jobs", "list", "--follow"}, "--follow: 'orchestrator jobs list' starts no job"},
           {{"infra", "release", "alc_1"}, "refusing without --confirm"},
           {{"engineering", "trigger", "p1"}, "missing TASK"},
           {{"engineering", "trigger", "p1", "fix it", "--max-iterations", "three"},
            "--max-iterations: expected a whole number"},
           {{"project", "update", "p1", "--change-delivery", "merge"},
            "--change-delivery: 'merge' is not one of: fast-forward, pull-request"},
           {{"project", "update", "p1"}, "nothing to change"},
           {{"diagnose", "errors", "p1", "--since", "yesterday"}, "--since: expected a time"},
           {{"jobs", "list", "--timeout", "soon"}, "--timeout: expected a duration"},
       }) {
    auto r = RunCli(c.args);
    EXPECT_EQ(r.status, kExitUsage) << c.says;
    EXPECT_THAT(r.err, HasSubstr(c.says));
    EXPECT_EQ(r.out, "") << c.says;
  }
}

TEST(UsageTest, AnUnreachableServerIsExitThreeWithAHint) {
  auto r = RunCli({"project", "list", "--timeout", "2s"});
  EXPECT_EQ(r.status, kExitUnavailable);
  EXPECT_THAT(r.err, HasSubstr("error: UNAVAILABLE"));
  EXPECT_THAT(r.err, HasSubstr("is orchestratord running at 127.0.0.1:1?"));
}

}  // namespace
}  // namespace orchestrator::cli
