// JobEndWatcher against a fake JobService on in-process channels: it
// watches as the mesh, tells each job end once, comes back after the jobs
// component restarts, and stops promptly.
#include "services/sessions/peers/job_end_watcher.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/rpc/queued_writer.h"

namespace orchestrator::sessions {
namespace {

namespace jv1 = ::orchestrator::jobs::v1;
using ::testing::ElementsAre;
using Writer = QueuedWriter<jv1::WatchJobsResponse>;

constexpr absl::Duration kWait = absl::Seconds(30);

// One change as WatchJobs sends it.
jv1::WatchJobsResponse Change(const std::string& owner, const std::string& job, int64_t sequence,
                              jv1::JobState to) {
  jv1::WatchJobsResponse r;
  r.mutable_job()->set_id(job);
  r.mutable_job()->set_owner_id(owner);
  r.mutable_job()->set_state(to);
  r.mutable_event()->set_job_id(job);
  r.mutable_event()->set_sequence(sequence);
  r.mutable_event()->set_type(jv1::JOB_EVENT_TYPE_STATE_CHANGED);
  r.mutable_event()->mutable_state_changed()->set_to_state(to);
  return r;
}

// JobService's WatchJobs: like the real one, it answers with its headers
// once the watch is in place, then streams what the test pushes.
class FakeJobService final : public jv1::JobService::CallbackService {
 public:
  grpc::ServerWriteReactor<jv1::WatchJobsResponse>* WatchJobs(
      grpc::CallbackServerContext* ctx, const jv1::WatchJobsRequest*) override {
    auto writer = Writer::Create();
    writer->StartSendInitialMetadata();
    writer->OnFinished([this] {
      absl::MutexLock lock(&mu_);
      ++left_;
    });
    absl::MutexLock lock(&mu_);
    writer_ = writer;
    for (const auto& [k, v] : ctx->client_metadata()) {
      if (k == "authorization") authorization_ = std::string(v.data(), v.size());
      if (k == "x-orchestrator-act-for") act_for_ = std::string(v.data(), v.size());
    }
    return writer.get();
  }

  // ListJobs: the jobs `Ended` set, filtered by state as the real one does.
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* ctx,
                                     const jv1::ListJobsRequest* req,
                                     jv1::ListJobsResponse* resp) override {
    {
      absl::MutexLock lock(&mu_);
      for (const auto& job : ended_) {
        if (job.state() == req->state()) *resp->add_jobs() = job;
      }
    }
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  void Ended(const std::string& owner, const std::string& id, jv1::JobState state, absl::Time at,
             int error_code = 0, const std::string& error_message = "") {
    jv1::Job job;
    job.set_id(id);
    job.set_owner_id(owner);
    job.set_state(state);
    job.set_attempt(1);
    job.mutable_error()->set_code(error_code);
    job.mutable_error()->set_message(error_message);
    job.mutable_update_time()->set_seconds(absl::ToUnixSeconds(at));
    absl::MutexLock lock(&mu_);
    ended_.push_back(job);
  }

  // The stream open now, once there is one.
  std::shared_ptr<Writer> AwaitStream() {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(
                             +[](std::shared_ptr<Writer>* w) { return *w != nullptr; }, &writer_),
                         kWait);
    return writer_;
  }
  // Whether every stream opened has ended (the watcher left).
  bool AwaitAllLeft() {
    absl::MutexLock lock(&mu_);
    auto all_left = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return writer_ != nullptr && left_ == 1;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&all_left), kWait);
  }
  std::string authorization() {
    absl::MutexLock lock(&mu_);
    return authorization_;
  }
  std::string act_for() {
    absl::MutexLock lock(&mu_);
    return act_for_;
  }

 private:
  absl::Mutex mu_;
  std::shared_ptr<Writer> writer_ ABSL_GUARDED_BY(mu_);
  int left_ ABSL_GUARDED_BY(mu_) = 0;
  std::string authorization_ ABSL_GUARDED_BY(mu_);
  std::string act_for_ ABSL_GUARDED_BY(mu_) = "(none)";
  std::vector<jv1::Job> ended_ ABSL_GUARDED_BY(mu_);
};

// The jobs component: a server that can be stopped and started again.
class JobsComponent {
 public:
  void Start(FakeJobService* service) {
    // Over TCP, as a remote jobs component: an in-process channel must not
    // outlive its server, which this one does on purpose.
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service);
    auto server = builder.BuildAndStart();
    absl::MutexLock lock(&mu_);
    channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
    servers_.push_back(std::move(server));
  }
  void Stop() {
    absl::MutexLock lock(&mu_);
    servers_.back()->Shutdown(std::chrono::system_clock::now());
  }
  ~JobsComponent() {
    for (auto& s : servers_) s->Shutdown(std::chrono::system_clock::now());
  }
  JobEndWatcher::StubPtr NewStub() {
    absl::MutexLock lock(&mu_);
    return jv1::JobService::NewStub(channel_);
  }

 private:
  absl::Mutex mu_;
  // Before the first start: nothing answers (as in the mesh before it serves).
  std::shared_ptr<grpc::Channel> channel_ ABSL_GUARDED_BY(mu_) = grpc::CreateChannel(
      "unix:/nonexistent/orchestrator-jobs.sock", grpc::InsecureChannelCredentials());
  std::vector<std::unique_ptr<grpc::Server>> servers_ ABSL_GUARDED_BY(mu_);
};

using Told = std::tuple<std::string, std::string, std::string>;

class JobEndWatcherTest : public ::testing::Test {
 protected:
  JobEndWatcherTest() {
    JobEndWatcher::Options options;
    options.min_backoff = std::chrono::milliseconds(10);
    options.max_backoff = std::chrono::milliseconds(50);
    watcher_ =
        std::make_unique<JobEndWatcher>([this] { return jobs_.NewStub(); }, mesh_,
                                        [this](const JobEnd& end) {
                                          absl::MutexLock lock(&mu_);
                                          told_.emplace_back(end.owner_id, end.job_id, end.outcome);
                                          ends_.push_back(end);
                                        },
                                        options);
  }
  ~JobEndWatcherTest() override { watcher_->Stop(); }

  std::vector<Told> AwaitTold(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return told_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), kWait);
    return told_;
  }

  MeshCredentialPtr mesh_ = std::make_shared<const MeshCredential>(MeshCredential::Random());
  FakeJobService first_, second_;
  JobsComponent jobs_;
  std::unique_ptr<JobEndWatcher> watcher_;
  absl::Mutex mu_;
  std::vector<Told> told_ ABSL_GUARDED_BY(mu_);
  std::vector<JobEnd> ends_ ABSL_GUARDED_BY(mu_);
};

TEST_F(JobEndWatcherTest, TellsEachJobEndOnceAcrossARestartOfTheJobsComponent) {
  jobs_.Start(&first_);
  watcher_->Start();
  auto stream = first_.AwaitStream();
  ASSERT_NE(stream, nullptr);
  // As the mesh itself, acting for nobody: it sees every owner's jobs.
  EXPECT_EQ(first_.authorization(), "Bearer " + mesh_->value());
  EXPECT_EQ(first_.act_for(), "(none)");

  stream->Push(Change("u1", "job_1", 2, jv1::JOB_STATE_RUNNING));
  jv1::WatchJobsResponse progress = Change("u1", "job_1", 3, jv1::JOB_STATE_RUNNING);
  progress.mutable_event()->set_type(jv1::JOB_EVENT_TYPE_PROGRESS);
  stream->Push(progress);
  stream->Push(Change("u1", "job_1", 5, jv1::JOB_STATE_SUCCEEDED));
  EXPECT_THAT(AwaitTold(1), ElementsAre(Told{"u1", "job_1", "succeeded"}));

  // The jobs component goes away and comes back: the watcher reconnects.
  jobs_.Stop();
  jobs_.Start(&second_);
  stream = second_.AwaitStream();
  ASSERT_NE(stream, nullptr);
  stream->Push(Change("u1", "job_1", 5, jv1::JOB_STATE_SUCCEEDED));  // told already
  stream->Push(Change("u2", "job_2", 7, jv1::JOB_STATE_FAILED));
  stream->Push(Change("u1", "job_3", 4, jv1::JOB_STATE_CANCELLED));
  EXPECT_THAT(AwaitTold(3),
              ElementsAre(Told{"u1", "job_1", "succeeded"}, Told{"u2", "job_2", "failed"},
                          Told{"u1", "job_3", "was cancelled"}));

  // Stopping leaves the open stream at once.
  watcher_->Stop();
  EXPECT_TRUE(second_.AwaitAllLeft());
}

TEST_F(JobEndWatcherTest, AJobThePlatformStartedOnItsOwnSaysWhy) {
  jobs_.Start(&first_);
  watcher_->Start();
  auto stream = first_.AwaitStream();
  ASSERT_NE(stream, nullptr);
  jv1::WatchJobsResponse ended = Change("u1", "job_9", 6, jv1::JOB_STATE_SUCCEEDED);
  ended.mutable_job()->set_kind("rollback");
  (*ended.mutable_job()->mutable_params()->mutable_fields())["started_because"].set_string_value(
      "release 2 failed 3 health checks in a row");
  stream->Push(ended);
  ASSERT_EQ(AwaitTold(1).size(), 1u);
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(ends_[0].kind, "rollback");
  EXPECT_EQ(ends_[0].started_because, "release 2 failed 3 health checks in a row");
}

TEST_F(JobEndWatcherTest, AFailureAskingForAHumanIsMarkedAndCarriesItsError) {
  jobs_.Start(&first_);
  watcher_->Start();
  auto stream = first_.AwaitStream();
  ASSERT_NE(stream, nullptr);
  const std::string needs_human =
      "needs a human: tests still fail after 3 iterations; branch orchestrator/run_1 holds the "
      "last attempt (8f3c2a9)";
  // The error as of the change, though the job was read after a retry
  // cleared it.
  jv1::WatchJobsResponse escalated = Change("u1", "job_1", 9, jv1::JOB_STATE_FAILED);
  escalated.mutable_job()->set_kind("engineering");
  escalated.mutable_job()->set_state(jv1::JOB_STATE_QUEUED);
  escalated.mutable_event()->mutable_state_changed()->mutable_error()->set_code(9);
  escalated.mutable_event()->mutable_state_changed()->mutable_error()->set_message(needs_human);
  stream->Push(escalated);
  // FAILED_PRECONDITION without the prefix, and the prefix with another code.
  jv1::WatchJobsResponse plain = Change("u1", "job_2", 4, jv1::JOB_STATE_FAILED);
  plain.mutable_job()->mutable_error()->set_code(9);
  plain.mutable_job()->mutable_error()->set_message("port 8080 is taken");
  stream->Push(plain);
  jv1::WatchJobsResponse internal = Change("u1", "job_3", 4, jv1::JOB_STATE_FAILED);
  internal.mutable_job()->mutable_error()->set_code(13);
  internal.mutable_job()->mutable_error()->set_message("needs a human, says the handler");
  stream->Push(internal);
  ASSERT_EQ(AwaitTold(3).size(), 3u);
  absl::MutexLock lock(&mu_);
  EXPECT_TRUE(ends_[0].needs_human);
  EXPECT_EQ(ends_[0].error_message, needs_human);
  EXPECT_EQ(ends_[0].kind, "engineering");
  EXPECT_FALSE(ends_[1].needs_human);
  EXPECT_EQ(ends_[1].error_message, "port 8080 is taken");
  EXPECT_FALSE(ends_[2].needs_human);
}

TEST_F(JobEndWatcherTest, AFailureAskingForAHumanWhileUnwatchedIsMarkedToo) {
  jobs_.Start(&first_);
  watcher_->Start();
  ASSERT_NE(first_.AwaitStream(), nullptr);
  jobs_.Stop();
  second_.Ended("u1", "job_escalated", jv1::JOB_STATE_FAILED, absl::Now(), 9,
                "needs a human: the rebase conflicts");
  jobs_.Start(&second_);
  ASSERT_NE(second_.AwaitStream(), nullptr);
  EXPECT_THAT(AwaitTold(1), ElementsAre(Told{"u1", "job_escalated", "failed"}));
  absl::MutexLock lock(&mu_);
  EXPECT_TRUE(ends_[0].needs_human);
  EXPECT_EQ(ends_[0].error_message, "needs a human: the rebase conflicts");
}

TEST_F(JobEndWatcherTest, WaitsForAJobsComponentThatIsNotUpYet) {
  watcher_->Start();  // nothing serves yet: its first tries fail
  jobs_.Start(&first_);
  auto stream = first_.AwaitStream();
  ASSERT_NE(stream, nullptr);
  stream->Push(Change("u1", "job_1", 3, jv1::JOB_STATE_FAILED));
  EXPECT_THAT(AwaitTold(1), ElementsAre(Told{"u1", "job_1", "failed"}));
}

TEST_F(JobEndWatcherTest, CatchesUpWithTheJobsThatEndedWhileNoWatchWasOpen) {
  jobs_.Start(&first_);
  watcher_->Start();
  ASSERT_NE(first_.AwaitStream(), nullptr);
  // While the jobs component is away, two jobs end; one ended long before.
  jobs_.Stop();
  second_.Ended("u1", "job_gap", jv1::JOB_STATE_SUCCEEDED, absl::Now());
  second_.Ended("u2", "job_gap_failed", jv1::JOB_STATE_FAILED, absl::Now());
  second_.Ended("u3", "job_old", jv1::JOB_STATE_SUCCEEDED, absl::Now() - absl::Hours(2));
  jobs_.Start(&second_);
  auto stream = second_.AwaitStream();
  ASSERT_NE(stream, nullptr);
  EXPECT_THAT(AwaitTold(2),
              ::testing::UnorderedElementsAre(Told{"u1", "job_gap", "succeeded"},
                                              Told{"u2", "job_gap_failed", "failed"}));
  // The stream then tells the same end again: told once.
  jv1::WatchJobsResponse again = Change("u1", "job_gap", 9, jv1::JOB_STATE_SUCCEEDED);
  again.mutable_job()->set_attempt(1);
  stream->Push(again);
  stream->Push(Change("u4", "job_live", 3, jv1::JOB_STATE_CANCELLED));
  auto told = AwaitTold(3);
  EXPECT_EQ(told.size(), 3u);
  EXPECT_EQ(told.back(), (Told{"u4", "job_live", "was cancelled"}));
}

}  // namespace
}  // namespace orchestrator::sessions
