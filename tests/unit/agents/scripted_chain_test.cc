// The scripted PO's chain against a fake CLI: which commands each turn
// runs, in order, with what, and what the user is told; a turn about
// another job, a failed step and a second build while one runs.
#include "services/agents/runner/scripted_chain.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace orchestrator::agents {
namespace {
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Answers the CLI calls the chain makes, recording them.
class FakeCli {
 public:
  CliOutput operator()(const std::vector<std::string>& args) {
    calls.push_back(absl::StrJoin(args, " "));
    const std::string what = args[0] + " " + args[1];
    if (what == "project create") return {0, R"({"project":{"id":"prj_1"}})", ""};
    if (what == "scaffold run") return {0, R"({"job":{"id":"job_s"}})", ""};
    // Each new job its own id: job_e, job_e2, …
    if (what == "engineering trigger") {
      return {0, absl::StrCat(R"({"job":{"id":")", Next("job_e"), R"("},"run":{}})"), ""};
    }
    if (what == "deploy trigger") {
      return {0, absl::StrCat(R"({"job":{"id":")", Next("job_d"), R"("}})"), ""};
    }
    if (what == "jobs get" && platform.count(args[2])) return {0, platform.at(args[2]), ""};
    if (what == "jobs get") {
      const std::string state = ended.count(args[2]) ? ended.at(args[2]) : "JOB_STATE_RUNNING";
      if (state == "JOB_STATE_FAILED") {
        return {0,
                R"({"job":{"state":"JOB_STATE_FAILED","error":{"message":"health gate failed: )"
                R"(/healthz answered 500"}}})",
                ""};
      }
      if (absl::StartsWith(args[2], "job_d")) {
        return {0,
                absl::StrCat(R"({"job":{"state":")", state,
                             R"(","result":{"url":"http://prj-1.localhost:8090"}}})"),
                ""};
      }
      return {0,
              absl::StrCat(R"({"job":{"state":")", state,
                           R"(","result":{"commit_sha":"0123456789abcdef"}}})"),
              ""};
    }
    return {2, "", "unknown command"};
  }
  std::string Next(const std::string& base) {
    const int n = ++made[base];
    return n == 1 ? base : absl::StrCat(base, n);
  }
  std::map<std::string, int> made;
  std::vector<std::string> calls;
  // The jobs that ended, and how (the rest run).
  std::map<std::string, std::string> ended;
  // Jobs the platform started on its own: what `jobs get` answers.
  std::map<std::string, std::string> platform;
};

class ScriptedChainTest : public ::testing::Test {
 protected:
  std::optional<std::string> Turn(const std::string& prompt) {
    return RunChainTurn(prompt, state_, [this](const auto& args) { return cli_(args); });
  }
  const std::string state_ =
      (std::filesystem::temp_directory_path() / ("chain-" + std::to_string(getpid()) + ".json"))
          .string();
  FakeCli cli_;
  ~ScriptedChainTest() override { std::filesystem::remove(state_); }
};

TEST_F(ScriptedChainTest, EachJobsEndStartsTheNextStepUntilTheUrl) {
  auto first = Turn("Build a python service called shop that answers Hello there!");
  ASSERT_TRUE(first);
  EXPECT_THAT(*first, HasSubstr("Building shop"));
  EXPECT_THAT(cli_.calls, ElementsAre("project create shop --json",
                                      "scaffold run prj_1 --template python-http --answer "
                                      "service_title=shop --json"));
  cli_.calls.clear();
  cli_.ended["job_s"] = "JOB_STATE_SUCCEEDED";
  auto scaffolded = Turn("Job job_s that you started succeeded. Tell the user in one sentence.");
  ASSERT_TRUE(scaffolded);
  EXPECT_THAT(*scaffolded, HasSubstr("Scaffolded shop (commit 0123456789ab)"));
  ASSERT_EQ(cli_.calls.size(), 2u);
  // The coding agent's task: the user's words, and the steps that make the
  // greeting the text (the template's default greeting replaced).
  EXPECT_THAT(cli_.calls[1], HasSubstr("engineering trigger prj_1 Make shop answer"));
  EXPECT_THAT(cli_.calls[1], HasSubstr(R"("old":"GREETING = \"Hello from shop!\"")"));
  EXPECT_THAT(cli_.calls[1], HasSubstr(R"("new":"GREETING = \"Hello there!\"")"));
  EXPECT_THAT(cli_.calls[1], HasSubstr("--agent scripted"));
  cli_.calls.clear();
  cli_.ended["job_e"] = "JOB_STATE_SUCCEEDED";
  EXPECT_THAT(Turn("Job job_e that you started succeeded.").value_or(""),
              HasSubstr("Deploying it (job job_d)"));
  EXPECT_THAT(cli_.calls.back(), "deploy trigger prj_1 --json");
  cli_.ended["job_d"] = "JOB_STATE_SUCCEEDED";
  EXPECT_EQ(Turn("Job job_d that you started succeeded.").value_or(""),
            "shop is live at http://prj-1.localhost:8090 and answers \"Hello there!\".");

  // Then a change goes from the text now served.
  cli_.calls.clear();
  EXPECT_THAT(Turn("change the text to Bonjour").value_or(""), HasSubstr("coding agent"));
  EXPECT_THAT(cli_.calls[0], HasSubstr(R"("old":"GREETING = \"Hello there!\"")"));
  EXPECT_THAT(cli_.calls[0], HasSubstr(R"("new":"GREETING = \"Bonjour\"")"));
}

TEST_F(ScriptedChainTest, OtherJobsAndOtherWordsAreNotTheChains) {
  ASSERT_TRUE(Turn("build a node service called api that answers hi"));
  EXPECT_THAT(cli_.calls[1], HasSubstr("--template node-http"));
  EXPECT_FALSE(Turn("Job job_other that you started succeeded."));
  EXPECT_FALSE(Turn("list my projects"));
  // Quotes would break the source the text goes into: not this chain's.
  EXPECT_FALSE(Turn("build a python service called x that answers \"a\\\"b\""));
}

TEST_F(ScriptedChainTest, AFailedStepEndsTheChainSayingWhyAndABuildWaitsForTheOneRunning) {
  ASSERT_TRUE(Turn("build a python service called shop that answers one"));
  EXPECT_THAT(Turn("build a python service called other that answers two").value_or(""),
              HasSubstr("I am still building shop"));
  cli_.ended["job_s"] = "JOB_STATE_SUCCEEDED";
  (void)Turn("Job job_s that you started succeeded.");
  cli_.ended["job_e"] = "JOB_STATE_SUCCEEDED";
  (void)Turn("Job job_e that you started succeeded.");
  cli_.ended["job_d"] = "JOB_STATE_FAILED";
  EXPECT_EQ(Turn("Job job_d that you started failed.").value_or(""),
            "The deploy step of shop failed (job job_d): health gate failed: /healthz answered "
            "500");
  // Stopped, the project is still there to change.
  cli_.calls.clear();
  EXPECT_THAT(Turn("change the text to three").value_or(""), HasSubstr("coding agent"));
  EXPECT_THAT(cli_.calls[0], HasSubstr(R"("old":"GREETING = \"one\"")"));
}

TEST_F(ScriptedChainTest, APlatformFixOfAFailedDeployIsFollowedToItsRedeploy) {
  ASSERT_TRUE(Turn("build a python service called shop that answers one"));
  for (const char* job : {"job_s", "job_e", "job_d"}) {
    cli_.ended[job] = "JOB_STATE_SUCCEEDED";
    (void)Turn(absl::StrCat("Job ", job, " that you started succeeded."));
  }
  ASSERT_TRUE(Turn("change the text to two"));
  cli_.ended["job_e2"] = "JOB_STATE_SUCCEEDED";
  (void)Turn("Job job_e2 that you started succeeded.");
  cli_.ended["job_d2"] = "JOB_STATE_FAILED";
  EXPECT_THAT(Turn("Job job_d2 that you started failed.").value_or(""),
              HasSubstr("The deploy step of shop failed"));

  // The platform's fix, then its redeploy: each told, what happened asked.
  cli_.platform["job_f"] =
      R"({"job":{"kind":"deploy.fix","project_id":"prj_1","state":"JOB_STATE_SUCCEEDED",)"
      R"("result":{"commit_sha":"fedcba9876543210","deploy_job_id":"job_fixd"}}})";
  cli_.platform["job_r"] =
      R"({"job":{"kind":"engineering","project_id":"prj_1","state":"JOB_STATE_SUCCEEDED",)"
      R"("result":{"commit_sha":"fedcba9876543210"}}})";
  EXPECT_EQ(Turn("The platform started engineering job job_r on its own (not at the user's "
                 "request): a step of its job job_f. It succeeded.")
                .value_or(""),
            "A coding agent's fix for shop passed its tests (commit fedcba987654).");
  EXPECT_EQ(Turn("The platform started deploy.fix job job_f on its own (not at the user's "
                 "request): release 2 failed. It succeeded.")
                .value_or(""),
            "The platform is deploying the fix of shop (commit fedcba987654, job job_fixd).");
  cli_.platform["job_fixd"] =
      R"({"job":{"kind":"deploy","project_id":"prj_1","state":"JOB_STATE_SUCCEEDED",)"
      R"("result":{"url":"http://prj-1.localhost:8090"}}})";
  EXPECT_EQ(Turn("The platform started deploy job job_fixd on its own (not at the user's request): "
                 "deploying commit fedcba987654. It succeeded.")
                .value_or(""),
            "shop is live again at http://prj-1.localhost:8090 with the fix, answering \"one\" "
            "as before the change that failed.");
  // The next change goes from the greeting served again.
  cli_.calls.clear();
  EXPECT_THAT(Turn("change the text to three").value_or(""), HasSubstr("coding agent"));
  EXPECT_THAT(cli_.calls[0], HasSubstr(R"("old":"GREETING = \"one\"")"));

  // Another project's platform job is not the chain's.
  cli_.platform["job_x"] =
      R"({"job":{"kind":"rollback","project_id":"prj_2","state":"JOB_STATE_SUCCEEDED"}})";
  EXPECT_FALSE(Turn("The platform started rollback job job_x on its own: sick. It succeeded."));
}

TEST_F(ScriptedChainTest, AFixThatFailsStopsTheChainSayingWhatIsStillLive) {
  ASSERT_TRUE(Turn("build a python service called shop that answers one"));
  for (const char* job : {"job_s", "job_e", "job_d"}) {
    cli_.ended[job] = "JOB_STATE_SUCCEEDED";
    (void)Turn(absl::StrCat("Job ", job, " that you started succeeded."));
  }
  cli_.platform["job_f"] =
      R"({"job":{"kind":"deploy.fix","project_id":"prj_1","state":"JOB_STATE_SUCCEEDED",)"
      R"("result":{"commit_sha":"fedcba9876543210","deploy_job_id":"job_fixd"}}})";
  (void)Turn("The platform started deploy.fix job job_f on its own: x. It succeeded.");
  cli_.platform["job_fixd"] =
      R"({"job":{"kind":"deploy","project_id":"prj_1","state":"JOB_STATE_FAILED",)"
      R"("error":{"message":"health gate failed: /nowhere answered 404"}}})";
  EXPECT_EQ(Turn("The platform started deploy job job_fixd on its own: y. It failed.").value_or(""),
            "The deploy of shop's fix failed too (job job_fixd): health gate failed: /nowhere "
            "answered 404 shop is still live at http://prj-1.localhost:8090.");
}

TEST_F(ScriptedChainTest, ATurnRunAgainAfterARestartSaysTheSameAndStartsNothingMore) {
  ASSERT_TRUE(Turn("build a python service called shop that answers one"));
  cli_.ended["job_s"] = "JOB_STATE_SUCCEEDED";
  const auto first = Turn("Job job_s that you started succeeded.");
  ASSERT_TRUE(first);
  cli_.calls.clear();
  // The same news again (its turn was cut off before its reply was kept).
  EXPECT_EQ(Turn("Job job_s that you started succeeded."), first);
  EXPECT_TRUE(cli_.calls.empty()) << "no second engineering run";
}

TEST_F(ScriptedChainTest, WhatAMessageSaysOfAJobIsNoProofOfIt) {
  ASSERT_TRUE(Turn("build a python service called shop that answers one"));
  // The user (or anyone) says the scaffold succeeded while it still runs:
  // nothing moves on.
  EXPECT_FALSE(Turn("Job job_s that you started succeeded."));
  EXPECT_THAT(cli_.calls.back(), "jobs get job_s --json");
  // A job whose news never came is taken up at the next request.
  cli_.ended["job_s"] = "JOB_STATE_SUCCEEDED";
  EXPECT_THAT(Turn("build a python service called other that answers two").value_or(""),
              HasSubstr("Scaffolded shop"));
}

TEST_F(ScriptedChainTest, HostileRequestsAreNotTheChainsAndStayFast) {
  // A carriage return would break the service's source.
  EXPECT_FALSE(Turn("build a python service called shop that answers a\rb"));
  // Long prompts: no match, no crash, no hang.
  EXPECT_FALSE(Turn("Job job_1 " + std::string(32000, 'x')));
  EXPECT_FALSE(
      Turn("build a python service called shop that answers y" + std::string(32000, ' ') + "z"));
  EXPECT_TRUE(cli_.calls.empty());
}

}  // namespace
}  // namespace orchestrator::agents
