// JobService over gRPC: watching streams, resuming, owner scoping, and a
// job run by another worker (its own connections) watched live here.
#include <google/protobuf/util/json_util.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/jobs/v1/jobs.grpc.pb.h"
#include "services/jobs/engine/demo_handlers.h"
#include "services/jobs/engine/worker.h"
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
      : mesh_("all", [demo](MeshConfig& c) { c.demo_jobs = demo; }),
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

}  // namespace
}  // namespace orchestrator::jobs
