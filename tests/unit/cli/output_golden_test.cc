// What people and programs see, pinned in golden files under golden/: a
// table, a key/value view, an event stream and the JSON mapping, rendered
// from fixed messages at a fixed "now". Regenerate after an intended change
// with UPDATE_GOLDEN=1 and review the diff.
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "clients/cli/output.h"
#include "gtest/gtest.h"
#include "orchestrator/engineering/v1/engineering.pb.h"
#include "orchestrator/jobs/v1/jobs.pb.h"
#include "orchestrator/projects/v1/projects.pb.h"
#include "services/common/commands/command.h"
#include "services/common/commands/job_event_text.h"

namespace orchestrator::cli {
namespace {

using commands::Command;
using commands::EventLine;
using commands::FindCommand;
using google::protobuf::util::TimeUtil;
namespace jobs_v1 = ::orchestrator::jobs::v1;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);  // 2027-01-15 08:00:00 UTC

google::protobuf::Timestamp Ago(absl::Duration d) {
  return TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(kNow - d));
}

void ExpectGolden(const std::string& name, const std::string& actual) {
  const std::string path = std::string(GOLDEN_DIR) + "/" + name;
  if (std::getenv("UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path) << actual;
    return;
  }
  std::ifstream in(path);
  ASSERT_TRUE(in) << "missing golden file " << path << " (run with UPDATE_GOLDEN=1)";
  std::stringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(actual, expected.str()) << "differs from " << path;
}

const Command& Find(const std::string& group, const std::string& name) {
  const Command* c = FindCommand(group, name);
  EXPECT_NE(c, nullptr);
  return *c;
}

jobs_v1::ListJobsResponse TwoJobs() {
  jobs_v1::ListJobsResponse resp;
  auto* a = resp.add_jobs();
  a->set_id("job_01jb9v3k2m");
  a->set_kind("deploy");
  a->set_owner_id("usr_alice");
  a->set_project_id("prj_shop");
  a->set_state(jobs_v1::JOB_STATE_RUNNING);
  a->set_progress_percent(40);
  *a->mutable_update_time() = Ago(absl::Seconds(12));
  auto* b = resp.add_jobs();
  b->set_id("job_01jb9t7q0x");
  b->set_kind("engineering");
  b->set_owner_id("usr_alice");
  b->set_state(jobs_v1::JOB_STATE_FAILED);
  *b->mutable_update_time() = Ago(absl::Hours(3));
  b->mutable_error()->set_code(9);
  b->mutable_error()->set_message("tests failed: 2 of 41");
  resp.set_next_page_token("tok_next");
  return resp;
}

TEST(OutputGoldenTest, JobsListIsAnAlignedTableWithTheNextPageOnStderr) {
  std::ostringstream out, err;
  PrintResponse(Find("jobs", "list"), TwoJobs(), kNow, out, err);
  ExpectGolden("jobs_list.txt", out.str());
  EXPECT_EQ(err.str(), "more: add --page-token tok_next\n");
}

TEST(OutputGoldenTest, JobsListJsonIsTheProtobufMapping) {
  const std::string json = Json(TwoJobs());
  ExpectGolden("jobs_list.json", json + "\n");
  // And it is what a program parses back.
  jobs_v1::ListJobsResponse back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &back).ok());
  EXPECT_EQ(back.jobs(1).error().message(), "tests failed: 2 of 41");
}

TEST(OutputGoldenTest, AnEmptyListSaysSo) {
  std::ostringstream out, err;
  PrintResponse(Find("jobs", "list"), jobs_v1::ListJobsResponse(), kNow, out, err);
  EXPECT_EQ(out.str(), "no jobs\n");
  EXPECT_EQ(err.str(), "");
}

TEST(OutputGoldenTest, ProjectGetShowsItsSetFieldsOnePerLine) {
  orchestrator::projects::v1::GetProjectResponse resp;
  auto* p = resp.mutable_project();
  p->set_id("prj_shop");
  p->set_owner_id("usr_alice");
  p->set_name("shop");
  p->set_display_name("The Shop");
  p->set_status(orchestrator::projects::v1::PROJECT_STATUS_READY);
  p->set_repository_url("file:///srv/git/shop.git");
  *p->mutable_create_time() = Ago(absl::Hours(50));
  *p->mutable_update_time() = Ago(absl::Minutes(4));
  std::ostringstream out, err;
  PrintResponse(Find("project", "get"), resp, kNow, out, err);
  ExpectGolden("project_get.txt", out.str());
}

TEST(OutputGoldenTest, EngineeringRunsShowAttemptsTestsUsageAndTheCommit) {
  namespace eng = ::orchestrator::engineering::v1;
  eng::ListEngineeringRunsResponse resp;
  const auto add = [&resp](const std::string& id, eng::EngineeringRunStatus status, int iterations,
                           int max_iterations, absl::Duration age) {
    eng::EngineeringRun* run = resp.add_runs();
    run->set_id(id);
    run->set_status(status);
    run->set_iterations(iterations);
    run->set_max_iterations(max_iterations);
    *run->mutable_create_time() = Ago(age);
    return run;
  };
  add("run_3", eng::ENGINEERING_RUN_STATUS_QUEUED, 0, 3, absl::Seconds(5));
  eng::EngineeringRun* failed =
      add("run_2", eng::ENGINEERING_RUN_STATUS_FAILED, 2, 2, absl::Hours(2));
  failed->mutable_last_test_report()->set_outcome(eng::TEST_OUTCOME_FAILED);
  failed->mutable_last_test_report()->set_passed_count(5);
  failed->mutable_last_test_report()->set_failed_count(1);
  failed->mutable_usage()->set_input_tokens(1'150'000);
  failed->mutable_usage()->set_output_tokens(52'000);
  eng::EngineeringRun* pushed =
      add("run_1", eng::ENGINEERING_RUN_STATUS_SUCCEEDED, 1, 3, absl::Hours(26));
  pushed->mutable_last_test_report()->set_outcome(eng::TEST_OUTCOME_PASSED);
  pushed->mutable_last_test_report()->set_passed_count(4);
  pushed->mutable_usage()->set_input_tokens(12'000);
  pushed->mutable_usage()->set_output_tokens(345);
  pushed->mutable_change()->set_commit_sha("8f3c2a91d0e4b5c6a7f8091a2b3c4d5e6f708192");
  // A test runner that prints no counts: the outcome alone.
  eng::EngineeringRun* outcome_only =
      add("run_0", eng::ENGINEERING_RUN_STATUS_SUCCEEDED, 1, 3, absl::Hours(50));
  outcome_only->mutable_last_test_report()->set_outcome(eng::TEST_OUTCOME_PASSED);
  outcome_only->mutable_usage()->set_output_tokens(850);
  std::ostringstream out, err;
  PrintResponse(Find("engineering", "runs"), resp, kNow, out, err);
  ExpectGolden("engineering_runs.txt", out.str());
  EXPECT_EQ(err.str(), "");
}

TEST(OutputGoldenTest, JobEventsReadAsAStory) {
  std::vector<jobs_v1::JobEvent> events(5);
  for (int i = 0; i < 5; ++i) {
    events[i].set_job_id("job_01jb9v3k2m");
    events[i].set_sequence(i + 1);
    *events[i].mutable_create_time() = Ago(absl::Seconds(10 - i));
  }
  events[0].set_type(jobs_v1::JOB_EVENT_TYPE_STATE_CHANGED);
  events[0].mutable_state_changed()->set_from_state(jobs_v1::JOB_STATE_QUEUED);
  events[0].mutable_state_changed()->set_to_state(jobs_v1::JOB_STATE_RUNNING);
  events[0].mutable_state_changed()->set_attempt(1);
  events[1].set_type(jobs_v1::JOB_EVENT_TYPE_PROGRESS);
  events[1].mutable_progress()->set_percent(50);
  events[1].mutable_progress()->set_message("step 1 of 2");
  events[2].set_type(jobs_v1::JOB_EVENT_TYPE_LOG_LINE);
  events[2].mutable_log_line()->set_stream(common::v1::LOG_STREAM_STDOUT);
  events[2].mutable_log_line()->set_text("building image");
  events[3].set_type(jobs_v1::JOB_EVENT_TYPE_RESULT);
  (*events[3].mutable_result()->mutable_result()->mutable_fields())["url"].set_string_value(
      "https://shop.example");
  events[4].set_type(jobs_v1::JOB_EVENT_TYPE_STATE_CHANGED);
  events[4].mutable_state_changed()->set_from_state(jobs_v1::JOB_STATE_RUNNING);
  events[4].mutable_state_changed()->set_to_state(jobs_v1::JOB_STATE_FAILED);
  events[4].mutable_state_changed()->mutable_error()->set_code(9);
  events[4].mutable_state_changed()->mutable_error()->set_message("port 8080 is taken");
  std::string lines;
  for (const auto& e : events) lines += EventLine(e, kNow) + "\n";
  ExpectGolden("job_events.txt", lines);

  jobs_v1::ListJobEventsResponse page;
  for (const auto& e : events) *page.add_events() = e;
  std::ostringstream out, err;
  PrintResponse(Find("jobs", "events"), page, kNow, out, err);
  ExpectGolden("jobs_events_table.txt", out.str());
}

}  // namespace
}  // namespace orchestrator::cli
