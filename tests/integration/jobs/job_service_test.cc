// JobService over gRPC: watching streams, resuming, owner scoping, and a
// job run by another worker (its own connections) watched live here.
#include <google/protobuf/util/json_util.h>

#include <map>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "orchestrator/projects/v1/projects.grpc.pb.h"
#include "services/common/pagination/page_budget.h"
#include "services/jobs/engine/demo_handlers.h"
#include "services/jobs/engine/worker.h"
#include "services/jobs/store/pg_job_store.h"
#include "tests/support/test_mesh.h"

namespace orchestrator::jobs {
namespace {

using ::testing::HasSubstr;
using testing::TestMesh;

google::protobuf::Struct Params(const std::string& json) {
  google::protobuf::Struct s;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &s).ok());
  return s;
}

std::vector<v1::JobEvent> WatchAll(v1::JobService::Stub& stub, const std::string& token,
                                   const std::string& job_id, int64_t after = 0,
                                   grpc::Status* status = nullptr) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  ctx->AddMetadata("authorization", "Bearer " + token);
  v1::WatchJobRequest req;
  req.set_job_id(job_id);
  req.set_after_sequence(after);
  auto reader = stub.WatchJob(ctx.get(), req);
  std::vector<v1::JobEvent> events;
  v1::WatchJobResponse resp;
  while (reader->Read(&resp)) events.push_back(resp.event());
  grpc::Status s = reader->Finish();
  if (status) *status = s;
  EXPECT_TRUE(status != nullptr || s.ok()) << s.error_message();
  return events;
}

std::vector<int64_t> Sequences(const std::vector<v1::JobEvent>& events) {
  std::vector<int64_t> out;
  for (const auto& e : events) out.push_back(e.sequence());
  return out;
}

std::vector<int64_t> Range(int64_t from, int64_t to) {
  std::vector<int64_t> out;
  for (int64_t i = from; i <= to; ++i) out.push_back(i);
  return out;
}

class JobServiceTest : public ::testing::Test {
 protected:
  explicit JobServiceTest(bool demo = true)
      : mesh_("admin,projects,jobs", [demo](MeshConfig& c) { c.demo_jobs = demo; }),
        stub_(v1::JobService::NewStub(mesh_.channel())) {
    std::tie(alice_id_, alice_) = mesh_.NewUser("alice");
    std::tie(bob_id_, bob_) = mesh_.NewUser("bob");
  }

  v1::Job Enqueue(const std::string& token, const std::string& kind, const std::string& params) {
    v1::EnqueueDemoJobRequest req;
    req.set_kind(kind);
    *req.mutable_params() = Params(params);
    v1::EnqueueDemoJobResponse resp;
    grpc::Status s = stub_->EnqueueDemoJob(TestMesh::Context(token).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.job();
  }

  TestMesh mesh_;
  std::unique_ptr<v1::JobService::Stub> stub_;
  std::string alice_id_, alice_, bob_id_, bob_;
};

TEST_F(JobServiceTest, WatchStreamsADemoJobToItsEndAndResumesWithoutGapOrDuplicate) {
  v1::Job job = Enqueue(alice_, "demo.sleep", R"({"seconds":0.2,"steps":4})");
  auto all = WatchAll(*stub_, alice_, job.id());
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(Sequences(all), Range(1, all.back().sequence()));
  EXPECT_EQ(all.back().state_changed().to_state(), v1::JOB_STATE_SUCCEEDED);
  int progress = 0;
  for (const auto& e : all) progress += e.type() == v1::JOB_EVENT_TYPE_PROGRESS;
  EXPECT_EQ(progress, 4);

  auto resumed = WatchAll(*stub_, alice_, job.id(), 3);
  EXPECT_EQ(Sequences(resumed), Range(4, all.back().sequence()));
  EXPECT_TRUE(WatchAll(*stub_, alice_, job.id(), all.back().sequence()).empty());  // ends at once
}

TEST_F(JobServiceTest, AFailingJobEndsTheStreamWithItsError) {
  v1::Job job =
      Enqueue(alice_, "demo.fail", R"({"code":"INVALID_ARGUMENT","message":"bad input"})");
  auto events = WatchAll(*stub_, alice_, job.id());
  ASSERT_FALSE(events.empty());
  const auto& last = events.back().state_changed();
  EXPECT_EQ(last.to_state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(last.error().code(), 3);
  EXPECT_EQ(last.error().message(), "bad input");

  v1::RetryJobRequest retry;
  retry.set_job_id(job.id());
  v1::RetryJobResponse retried;
  ASSERT_TRUE(stub_->RetryJob(TestMesh::Context(alice_).get(), retry, &retried).ok());
  EXPECT_EQ(retried.job().state(), v1::JOB_STATE_QUEUED);
  auto after_retry = WatchAll(*stub_, alice_, job.id(), events.back().sequence());
  ASSERT_FALSE(after_retry.empty());
  EXPECT_EQ(after_retry.front().sequence(), events.back().sequence() + 1);
  EXPECT_EQ(after_retry.back().state_changed().to_state(), v1::JOB_STATE_FAILED);
}

TEST_F(JobServiceTest, WatchingARetriedJobFromTheStartFollowsItPastItsFirstEnd) {
  v1::Job job = Enqueue(alice_, "demo.fail", R"({"code":"FAILED_PRECONDITION"})");
  auto first = WatchAll(*stub_, alice_, job.id());
  ASSERT_EQ(first.back().state_changed().to_state(), v1::JOB_STATE_FAILED);
  v1::RetryJobRequest retry;
  retry.set_job_id(job.id());
  v1::RetryJobResponse retried;
  ASSERT_TRUE(stub_->RetryJob(TestMesh::Context(alice_).get(), retry, &retried).ok());
  auto all = WatchAll(*stub_, alice_, job.id());
  EXPECT_EQ(Sequences(all), Range(1, all.back().sequence()));
  EXPECT_GT(all.back().sequence(), first.back().sequence());  // not the first FAILED
  EXPECT_EQ(all.back().state_changed().to_state(), v1::JOB_STATE_FAILED);
}

TEST_F(JobServiceTest, ASequenceBeyondTheLastEventIsOutOfRange) {
  v1::Job job = Enqueue(alice_, "demo.sleep", R"({"seconds":0})");
  auto all = WatchAll(*stub_, alice_, job.id());
  grpc::Status status;
  WatchAll(*stub_, alice_, job.id(), all.back().sequence() + 5, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_THAT(status.error_message(), HasSubstr("after_sequence"));
}

TEST_F(JobServiceTest, ASlowReaderStillGetsEveryEventInOrder) {
  v1::Job job = Enqueue(alice_, "demo.sleep", R"({"seconds":0,"steps":400})");
  // Open the slow stream first and do not read it until the job is over.
  grpc::ClientContext slow_ctx;
  slow_ctx.AddMetadata("authorization", "Bearer " + alice_);
  v1::WatchJobRequest req;
  req.set_job_id(job.id());
  auto slow = stub_->WatchJob(&slow_ctx, req);
  auto fast = WatchAll(*stub_, alice_, job.id());  // returns once the job ended
  ASSERT_GT(fast.size(), 400u);
  std::vector<v1::JobEvent> late;
  v1::WatchJobResponse resp;
  while (slow->Read(&resp)) late.push_back(resp.event());
  ASSERT_TRUE(slow->Finish().ok());
  EXPECT_EQ(Sequences(late), Sequences(fast));
}

TEST_F(JobServiceTest, OtherOwnersJobsAreNotFoundEverywhere) {
  v1::Job job = Enqueue(alice_, "demo.sleep", R"({"seconds":0})");
  v1::GetJobRequest get;
  get.set_job_id(job.id());
  v1::GetJobResponse got;
  EXPECT_EQ(stub_->GetJob(TestMesh::Context(bob_).get(), get, &got).error_code(),
            grpc::StatusCode::NOT_FOUND);
  grpc::Status watch;
  WatchAll(*stub_, bob_, job.id(), 0, &watch);
  EXPECT_EQ(watch.error_code(), grpc::StatusCode::NOT_FOUND);
  v1::CancelJobRequest cancel;
  cancel.set_job_id(job.id());
  v1::CancelJobResponse cancelled;
  EXPECT_EQ(stub_->CancelJob(TestMesh::Context(bob_).get(), cancel, &cancelled).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::ListJobsResponse bobs;
  ASSERT_TRUE(stub_->ListJobs(TestMesh::Context(bob_).get(), {}, &bobs).ok());
  EXPECT_EQ(bobs.jobs_size(), 0);
  v1::ListJobsResponse alices;
  ASSERT_TRUE(stub_->ListJobs(TestMesh::Context(alice_).get(), {}, &alices).ok());
  EXPECT_EQ(alices.jobs_size(), 1);
  // Naming another owner is refused, not answered with the caller's own list.
  v1::ListJobsRequest others;
  others.set_owner_id(alice_id_);
  grpc::Status s = stub_->ListJobs(TestMesh::Context(bob_).get(), others, &bobs);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("owner_id"));
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + bob_);
  v1::WatchJobsRequest watch_others;
  watch_others.set_owner_id("usr_nobody");
  auto changes = stub_->WatchJobs(&ctx, watch_others);
  v1::WatchJobsResponse change;
  EXPECT_FALSE(changes->Read(&change));
  EXPECT_EQ(changes->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(JobServiceTest, EventsPageInSequenceOrder) {
  v1::Job job = Enqueue(alice_, "demo.sleep", R"({"seconds":0,"steps":5})");
  auto all = WatchAll(*stub_, alice_, job.id());
  v1::ListJobEventsRequest req;
  req.set_job_id(job.id());
  req.set_page_size(3);
  std::vector<int64_t> paged;
  for (int pages = 0; pages < 10; ++pages) {
    v1::ListJobEventsResponse resp;
    ASSERT_TRUE(stub_->ListJobEvents(TestMesh::Context(alice_).get(), req, &resp).ok());
    for (const auto& e : resp.events()) paged.push_back(e.sequence());
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  EXPECT_EQ(paged, Sequences(all));
}

TEST_F(JobServiceTest, BadRequestsNameTheField) {
  v1::EnqueueDemoJobRequest req;
  req.set_kind("rm -rf");
  v1::EnqueueDemoJobResponse resp;
  grpc::Status s = stub_->EnqueueDemoJob(TestMesh::Context(alice_).get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("kind"));
  v1::ListJobsRequest list;
  list.set_state(static_cast<v1::JobState>(99));
  v1::ListJobsResponse listed;
  s = stub_->ListJobs(TestMesh::Context(alice_).get(), list, &listed);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("state"));
}

TEST_F(JobServiceTest, DemoParamsAreCheckedAtEnqueueNamingTheField) {
  const std::pair<const char*, const char*> bad[] = {
      {"demo.sleep", R"({"seconds":-1})"},    {"demo.sleep", R"({"seconds":1e308})"},
      {"demo.sleep", R"({"seconds":"abc"})"}, {"demo.sleep", R"({"steps":0})"},
      {"demo.sleep", R"({"steps":2.5})"},     {"demo.fail", R"({"code":"BOGUS"})"},
      {"demo.fail", R"({"code":"OK"})"},      {"demo.fail", R"({"message":7})"},
      {"demo.sleep", R"({"secs":1})"},        {"demo.noop", R"({"x":1})"}};
  const char* fields[] = {"params.seconds", "params.seconds", "params.seconds", "params.steps",
                          "params.steps",   "params.code",    "params.code",    "params.message",
                          "params: 'secs'", "params: 'x'"};
  for (size_t i = 0; i < std::size(bad); ++i) {
    v1::EnqueueDemoJobRequest req;
    req.set_kind(bad[i].first);
    *req.mutable_params() = Params(bad[i].second);
    v1::EnqueueDemoJobResponse resp;
    grpc::Status s = stub_->EnqueueDemoJob(TestMesh::Context(alice_).get(), req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad[i].second;
    EXPECT_THAT(s.error_message(), HasSubstr(fields[i])) << bad[i].second;
  }
  v1::ListJobsResponse listed;
  ASSERT_TRUE(stub_->ListJobs(TestMesh::Context(alice_).get(), {}, &listed).ok());
  EXPECT_EQ(listed.jobs_size(), 0) << "a refused job is not queued";
  // What the handlers accept is what the door accepts.
  Enqueue(alice_, "demo.sleep", R"({"seconds":0,"steps":1000})");
  Enqueue(alice_, "demo.fail", R"({"code":"UNAVAILABLE","message":"try later"})");
  Enqueue(alice_, "demo.noop", "{}");
}

TEST_F(JobServiceTest, AJobMayNameOnlyAProjectTheCallerCanSee) {
  auto projects = orchestrator::projects::v1::ProjectService::NewStub(mesh_.channel());
  auto create = [&](const std::string& token, const std::string& name) {
    orchestrator::projects::v1::CreateProjectRequest req;
    req.mutable_project()->set_name(name);
    orchestrator::projects::v1::CreateProjectResponse resp;
    EXPECT_TRUE(projects->CreateProject(TestMesh::Context(token).get(), req, &resp).ok());
    return resp.project().id();
  };
  const std::string alices = create(alice_, "alices"), bobs = create(bob_, "bobs");
  auto enqueue = [&](const std::string& token, const std::string& project_id,
                     v1::EnqueueDemoJobResponse* resp) {
    v1::EnqueueDemoJobRequest req;
    req.set_kind("demo.noop");
    req.set_project_id(project_id);
    return stub_->EnqueueDemoJob(TestMesh::Context(token).get(), req, resp);
  };
  v1::EnqueueDemoJobResponse resp;
  // Another owner's project and one that does not exist answer the same.
  grpc::Status others = enqueue(alice_, bobs, &resp);
  grpc::Status missing = enqueue(alice_, "prj_missing", &resp);
  EXPECT_EQ(others.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(others.error_message(), HasSubstr("not found"));
  v1::ListJobsResponse listed;
  ASSERT_TRUE(stub_->ListJobs(TestMesh::Context(alice_).get(), {}, &listed).ok());
  EXPECT_EQ(listed.jobs_size(), 0) << "nothing queued for a project she cannot see";

  grpc::Status own = enqueue(alice_, alices, &resp);
  ASSERT_TRUE(own.ok()) << own.error_message();
  EXPECT_EQ(resp.job().project_id(), alices);
  // An admin may name anyone's project.
  ASSERT_TRUE(enqueue(mesh_.admin_token(), bobs, &resp).ok());
  // A token that may not read projects cannot use one to name a job's project.
  auto [carol_id, carol] = mesh_.NewUser("carol", {"job.*"});
  grpc::Status blind = enqueue(carol, "prj_missing", &resp);
  EXPECT_EQ(blind.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(blind.error_message(), HasSubstr("project_id"));
}

TEST_F(JobServiceTest, WatchJobsReportsTheOwnersStateChangesOnly) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + alice_);
  auto changes = stub_->WatchJobs(&ctx, v1::WatchJobsRequest());
  changes->WaitForInitialMetadata();  // the watch is in place
  Enqueue(bob_, "demo.sleep", R"({"seconds":0})");
  v1::Job mine = Enqueue(alice_, "demo.sleep", R"({"seconds":0})");
  std::vector<v1::JobState> states;
  v1::WatchJobsResponse resp;
  while (changes->Read(&resp)) {
    EXPECT_EQ(resp.job().owner_id(), alice_id_);
    EXPECT_EQ(resp.job().id(), mine.id());
    states.push_back(resp.event().state_changed().to_state());
    if (states.back() == v1::JOB_STATE_SUCCEEDED) break;
  }
  ctx.TryCancel();
  EXPECT_EQ(states, (std::vector<v1::JobState>{v1::JOB_STATE_QUEUED, v1::JOB_STATE_RUNNING,
                                               v1::JOB_STATE_SUCCEEDED}));
}

class DemoDisabledTest : public JobServiceTest {
 protected:
  DemoDisabledTest() : JobServiceTest(false) {}
};

TEST_F(DemoDisabledTest, DemoJobsNeedTheFlag) {
  v1::EnqueueDemoJobRequest req;
  req.set_kind("demo.sleep");
  v1::EnqueueDemoJobResponse resp;
  grpc::Status s = stub_->EnqueueDemoJob(TestMesh::Context(alice_).get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("--demo_jobs"));
}

TEST_F(DemoDisabledTest, AWatcherHereSeesAJobRunByAnotherWorkerLive) {
  // The mesh's own worker has no demo handlers; another "process" (its own
  // pool, hub and worker on the same database) runs the job.
  auto pool = mesh_.database().NewPool(2);
  auto store = std::make_shared<PgJobStore>(pool);
  JobEventHub hub(mesh_.database().conninfo(), pool);
  hub.Start();
  ASSERT_TRUE(hub.WaitUntilListening(absl::Seconds(10)));
  Worker other(store, &hub, WorkerOptions{});
  RegisterDemoHandlers(other);

  EnqueueRequest r;
  r.kind = "demo.sleep";
  r.owner_id = alice_id_;
  r.params = Params(R"({"seconds":0.3,"steps":3})");
  auto job = store->Enqueue(r, absl::Now());
  ASSERT_TRUE(job.ok());
  std::vector<v1::JobEvent> events;
  std::thread watcher([&] { events = WatchAll(*stub_, alice_, job->id()); });
  other.Start();
  other.Poke();
  watcher.join();
  other.Stop();
  hub.Stop();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(Sequences(events), Range(1, events.back().sequence()));
  EXPECT_EQ(events.back().state_changed().to_state(), v1::JOB_STATE_SUCCEEDED);
}

// One owner's large jobs (large params, a handler's huge result, failure
// message and log lines) never make anyone's list fail: what handlers write is
// cut, and every page stops at a byte budget well under the 4 MiB transport
// limit, with nothing lost or repeated across pages.
TEST_F(DemoDisabledTest, LargeJobsPageByBytesAndNoListOutgrowsTheBudget) {
  auto pool = mesh_.database().NewPool(2);
  auto store = std::make_shared<PgJobStore>(pool);
  JobEventHub hub(mesh_.database().conninfo(), pool);
  hub.Start();
  ASSERT_TRUE(hub.WaitUntilListening(absl::Seconds(10)));
  Worker worker(store, &hub, WorkerOptions{});
  using Result = absl::StatusOr<google::protobuf::Struct>;
  worker.Register("test.big_result", [](JobContext&) -> Result {
    google::protobuf::Struct r;
    (*r.mutable_fields())["blob"].set_string_value(std::string(3 << 20, 'r'));
    return r;
  });
  worker.Register("test.big_failure", [](JobContext&) -> Result {
    return absl::FailedPreconditionError(std::string(1 << 20, 'm'));
  });
  worker.Register("test.chatty", [](JobContext& ctx) -> Result {
    for (int i = 0; i < 300; ++i) {
      if (auto s = ctx.Log(std::string(20000, 'l')); !s.ok()) return s;
    }
    return google::protobuf::Struct();
  });

  std::set<std::string> all;
  for (int i = 0; i < 12; ++i) {  // 4.8 MB of params together: more than one response may carry
    EnqueueRequest r;
    r.kind = "test.stored";  // no handler: stays queued
    r.owner_id = alice_id_;
    (*r.params.mutable_fields())["blob"].set_string_value(std::string(400 * 1024, 'p'));
    auto job = store->Enqueue(r, absl::Now());
    ASSERT_TRUE(job.ok()) << job.status();
    all.insert(job->id());
  }
  std::map<std::string, std::string> ran;
  for (const char* kind : {"test.big_result", "test.big_failure", "test.chatty"}) {
    EnqueueRequest r;
    r.kind = kind;
    r.owner_id = alice_id_;
    r.max_attempts = 1;
    auto job = store->Enqueue(r, absl::Now());
    ASSERT_TRUE(job.ok()) << job.status();
    all.insert(job->id());
    ran[kind] = job->id();
  }
  worker.Start();
  worker.Poke();
  for (const auto& [kind, id] : ran) {
    auto events = WatchAll(*stub_, alice_, id);
    ASSERT_FALSE(events.empty()) << kind;
    EXPECT_EQ(Sequences(events), Range(1, events.back().sequence())) << kind;
  }
  worker.Stop();
  hub.Stop();

  v1::GetJobRequest get;
  v1::GetJobResponse got;
  get.set_job_id(ran["test.big_result"]);
  ASSERT_TRUE(stub_->GetJob(TestMesh::Context(alice_).get(), get, &got).ok());
  EXPECT_EQ(got.job().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_TRUE(got.job().result().fields().at("truncated").bool_value());
  get.set_job_id(ran["test.big_failure"]);
  ASSERT_TRUE(stub_->GetJob(TestMesh::Context(alice_).get(), get, &got).ok());
  EXPECT_EQ(got.job().state(), v1::JOB_STATE_FAILED);
  EXPECT_LE(got.job().error().message().size(), kMaxErrorMessageBytes + 3);
  EXPECT_THAT(got.job().error().message(), ::testing::EndsWith("…"));

  // The admin's ListJobs {} (everyone's), page by page at the largest page size.
  std::multiset<std::string> listed;
  v1::ListJobsRequest list;
  list.set_page_size(500);
  int pages = 0;
  do {
    v1::ListJobsResponse resp;
    grpc::Status s = stub_->ListJobs(TestMesh::Context(mesh_.admin_token()).get(), list, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_LE(resp.ByteSizeLong(), kMaxPageBytes + 1024);
    for (const auto& j : resp.jobs()) listed.insert(j.id());
    list.set_page_token(resp.next_page_token());
    ASSERT_LT(++pages, 50);
  } while (!list.page_token().empty());
  EXPECT_GT(pages, 1);
  EXPECT_EQ(listed, std::multiset<std::string>(all.begin(), all.end()));

  // The chatty job's events: every line kept (cut), paged by bytes, in order.
  v1::ListJobEventsRequest events;
  events.set_job_id(ran["test.chatty"]);
  events.set_page_size(1000);
  std::vector<int64_t> sequences;
  int log_lines = 0;
  pages = 0;
  do {
    v1::ListJobEventsResponse resp;
    grpc::Status s = stub_->ListJobEvents(TestMesh::Context(alice_).get(), events, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_LE(resp.ByteSizeLong(), kMaxPageBytes + 1024);
    for (const auto& e : resp.events()) {
      sequences.push_back(e.sequence());
      if (!e.has_log_line()) continue;
      ++log_lines;
      EXPECT_LE(e.log_line().text().size(), kMaxLogTextBytes + 3);
    }
    events.set_page_token(resp.next_page_token());
    ASSERT_LT(++pages, 50);
  } while (!events.page_token().empty());
  EXPECT_GT(pages, 1);
  EXPECT_EQ(log_lines, 300);
  EXPECT_EQ(sequences, Range(1, sequences.back()));
}

}  // namespace
}  // namespace orchestrator::jobs
