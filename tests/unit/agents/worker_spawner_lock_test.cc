// A worker's lock guards its state in memory only: the spawner saves to its
// store, mints and revokes tokens, writes to the runner and calls watchers
// and listeners with the lock free, in the order of the changes.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/agents/domain/worker_spawner.h"

namespace orchestrator::agents {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Records the calls made while a worker's lock is held. Another thread
// takes the lock (through Unwatch, which does nothing else for an unknown
// handle); when it cannot within the bound, the caller holds it. That
// thread is never joined there: the thread holding the lock may be the one
// waiting for it.
class LockProbe {
 public:
  void Attach(WorkerSpawner* spawner) {
    absl::MutexLock lock(&mu_);
    spawner_ = spawner;
  }

  // Whether the lock was free (false after the first time it was not).
  bool Check(const std::string& worker_id, const std::string& what) {
    WorkerSpawner* spawner = nullptr;
    auto taken = std::make_shared<absl::Notification>();
    {
      absl::MutexLock lock(&mu_);
      // One is enough: each would wait out the bound.
      if (!held_.empty()) return false;
      if (spawner_ == nullptr || worker_id.empty()) return true;
      spawner = spawner_;
      probes_.push_back(taken);
    }
    std::thread([spawner, worker_id, taken] {
      spawner->Unwatch(worker_id, 0);
      taken->Notify();
    }).detach();
    if (taken->WaitForNotificationWithTimeout(absl::Seconds(5))) return true;
    absl::MutexLock lock(&mu_);
    held_.push_back(absl::StrCat(what, " (worker ", worker_id, ")"));
    return false;
  }

  // What was called with the lock held; waits for every probe first.
  std::vector<std::string> Held() {
    std::vector<std::shared_ptr<absl::Notification>> probes;
    {
      absl::MutexLock lock(&mu_);
      probes = probes_;
    }
    for (auto& p : probes) p->WaitForNotification();
    absl::MutexLock lock(&mu_);
    return held_;
  }

 private:
  absl::Mutex mu_;
  WorkerSpawner* spawner_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::vector<std::string> held_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<absl::Notification>> probes_ ABSL_GUARDED_BY(mu_);
};

class FakeWorkerStore final : public WorkerStore {
 public:
  explicit FakeWorkerStore(LockProbe* probe) : probe_(probe) {}

  absl::StatusOr<v1::Worker> CreateWorker(const v1::Worker& worker, const std::string&,
                                          const std::string&, bool* created) override {
    probe_->Check(worker.id(), "CreateWorker");
    absl::MutexLock lock(&mu_);
    workers_[worker.id()] = worker;
    *created = true;
    return worker;
  }
  absl::StatusOr<v1::Worker> GetWorker(const std::string& id) override {
    absl::MutexLock lock(&mu_);
    auto it = workers_.find(id);
    if (it == workers_.end()) return absl::NotFoundError(id);
    return it->second;
  }
  absl::Status SaveWorker(const v1::Worker& worker) override {
    probe_->Check(worker.id(), absl::StrCat("SaveWorker ", v1::WorkerState_Name(worker.state())));
    absl::MutexLock lock(&mu_);
    workers_[worker.id()] = worker;
    saved_states_.push_back(worker.state());
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> TokenOf(const std::string&) override { return std::string(); }
  absl::StatusOr<std::vector<v1::Worker>> ListWorkers(
      const std::string&, v1::WorkerState, v1::WorkerType, int,
      const std::optional<std::pair<int64_t, std::string>>&) override {
    return std::vector<v1::Worker>();
  }
  absl::StatusOr<std::vector<v1::Worker>> ListLiveWorkers() override {
    return std::vector<v1::Worker>();
  }
  absl::StatusOr<v1::Task> CreateTask(const v1::Task& task, const std::string& request_id,
                                      bool* created) override {
    probe_->Check(task.worker_id(), "CreateTask");
    absl::MutexLock lock(&mu_);
    if (!request_id.empty()) {
      auto [it, inserted] = task_of_request_.emplace(request_id, task.id());
      if (!inserted) {
        *created = false;
        return tasks_[it->second];
      }
    }
    tasks_[task.id()] = task;
    *created = true;
    return task;
  }
  absl::Status SaveResult(const v1::TaskResult& result) override {
    probe_->Check(WorkerOfTask(result.task_id()), "SaveResult");
    absl::MutexLock lock(&mu_);
    results_[result.task_id()] = result;
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<v1::TaskResult>> ResultOf(const std::string& task_id) override {
    absl::MutexLock lock(&mu_);
    auto it = results_.find(task_id);
    if (it == results_.end()) return std::optional<v1::TaskResult>();
    return std::optional<v1::TaskResult>(it->second);
  }
  absl::Status SaveFinish(const std::string& task_id,
                          const v1::FinishTaskRequest& finish) override {
    probe_->Check(WorkerOfTask(task_id), "SaveFinish");
    absl::MutexLock lock(&mu_);
    finishes_[task_id] = finish;
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<v1::FinishTaskRequest>> FinishOf(
      const std::string& task_id) override {
    probe_->Check(WorkerOfTask(task_id), "FinishOf");
    absl::MutexLock lock(&mu_);
    auto it = finishes_.find(task_id);
    if (it == finishes_.end()) return std::optional<v1::FinishTaskRequest>();
    return std::optional<v1::FinishTaskRequest>(it->second);
  }
  absl::StatusOr<std::vector<v1::Task>> RunningTasks(const std::string&) override {
    return std::vector<v1::Task>();
  }

  std::vector<v1::WorkerState> saved_states() {
    absl::MutexLock lock(&mu_);
    return saved_states_;
  }
  std::optional<v1::TaskResult> result(const std::string& task_id) {
    absl::MutexLock lock(&mu_);
    auto it = results_.find(task_id);
    if (it == results_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::string WorkerOfTask(const std::string& task_id) {
    absl::MutexLock lock(&mu_);
    auto it = tasks_.find(task_id);
    return it == tasks_.end() ? "" : it->second.worker_id();
  }

  LockProbe* probe_;
  absl::Mutex mu_;
  std::map<std::string, v1::Worker> workers_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::WorkerState> saved_states_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::Task> tasks_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> task_of_request_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::TaskResult> results_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::FinishTaskRequest> finishes_ ABSL_GUARDED_BY(mu_);
};

class FakeTokenMinter final : public TokenMinter {
 public:
  explicit FakeTokenMinter(LockProbe* probe) : probe_(probe) {}

  absl::StatusOr<Minted> Mint(const Principal&, const std::string& worker_id, const std::string&,
                              const std::vector<std::string>&) override {
    probe_->Check(worker_id, "Mint");
    return Minted{absl::StrCat("tok_", worker_id), "secret"};
  }
  void Revoke(const std::string& token_id) override {
    const std::string worker_id = token_id.substr(4);
    probe_->Check(worker_id, "Revoke");
    absl::MutexLock lock(&mu_);
    revoked_.push_back(token_id);
  }

  std::vector<std::string> revoked() {
    absl::MutexLock lock(&mu_);
    return revoked_;
  }

 private:
  LockProbe* probe_;
  absl::Mutex mu_;
  std::vector<std::string> revoked_ ABSL_GUARDED_BY(mu_);
};

// The runner's end of the connection: what the spawner sent it, by kind.
class FakeRunnerLink final : public RunnerLink {
 public:
  FakeRunnerLink(LockProbe* probe, std::string worker_id)
      : probe_(probe), worker_id_(std::move(worker_id)) {}

  void Send(const v1::ConnectResponse& message) override {
    probe_->Check(worker_id_, "RunnerLink::Send");
    absl::MutexLock lock(&mu_);
    sent_.push_back(message.has_welcome()  ? "welcome"
                    : message.has_task()   ? "task"
                    : message.has_cancel() ? "cancel"
                                           : "other");
  }
  void Close(const absl::Status&) override {
    probe_->Check(worker_id_, "RunnerLink::Close");
    absl::MutexLock lock(&mu_);
    sent_.push_back("close");
  }

  std::vector<std::string> sent() {
    absl::MutexLock lock(&mu_);
    return sent_;
  }

 private:
  LockProbe* probe_;
  const std::string worker_id_;
  absl::Mutex mu_;
  std::vector<std::string> sent_ ABSL_GUARDED_BY(mu_);
};

class WorkerSpawnerLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            absl::StrCat("spawner-lock-test-", getpid(), "-",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "bin");
    // A runner that waits to be killed: the test plays its part.
    const fs::path runner = root_ / "bin" / "orchestrator-runner";
    std::ofstream(runner) << "#!/bin/sh\nexec sleep 600\n";
    fs::permissions(runner, fs::perms::owner_all);
    SpawnerOptions options;
    options.root_dir = root_.string();
    options.bin_dir = (root_ / "bin").string();
    options.mesh_socket = (root_ / "mesh.sock").string();
    options.unsandboxed = true;
    store_ = std::make_shared<FakeWorkerStore>(&probe_);
    minter_ = std::make_shared<FakeTokenMinter>(&probe_);
    spawner_ = std::make_unique<WorkerSpawner>(options, store_, minter_);
    probe_.Attach(spawner_.get());
    alice_.user_id = "usr_alice";
    alice_.user_name = "alice";
  }

  void TearDown() override {
    probe_.Held();  // no probe thread outlives the spawner
    spawner_.reset();
    fs::remove_all(root_);
  }

  // A started worker whose runner (`link`) connected: READY.
  std::string ReadyWorker(FakeRunnerLink** link) {
    v1::StartWorkerRequest start;
    start.mutable_config()->set_worker_type(v1::WORKER_TYPE_DEVELOPER);
    auto worker = spawner_->Start(alice_, start);
    EXPECT_TRUE(worker.ok()) << worker.status();
    if (!worker.ok()) return "";
    EXPECT_EQ(worker->state(), v1::WORKER_STATE_STARTING);
    links_.push_back(std::make_unique<FakeRunnerLink>(&probe_, worker->id()));
    *link = links_.back().get();
    Principal runner;
    runner.token_id = absl::StrCat("tok_", worker->id());
    v1::RunnerHello hello;
    hello.set_worker_id(worker->id());
    auto config = spawner_->RunnerConnected(runner, hello, *link);
    EXPECT_TRUE(config.ok()) << config.status();
    return worker->id();
  }

  fs::path root_;
  LockProbe probe_;
  std::shared_ptr<FakeWorkerStore> store_;
  std::shared_ptr<FakeTokenMinter> minter_;
  std::vector<std::unique_ptr<FakeRunnerLink>> links_;  // outlive the spawner
  std::unique_ptr<WorkerSpawner> spawner_;
  Principal alice_;
};

TEST_F(WorkerSpawnerLockTest, AWorkersLifeCallsOutOnlyWithItsLockFreeAndInOrder) {
  FakeRunnerLink* link = nullptr;
  const std::string id = ReadyWorker(&link);
  ASSERT_FALSE(id.empty());

  std::vector<v1::WorkerState> watched;
  auto watch = spawner_->Watch(alice_, id, [&](const v1::Worker& w) {
    probe_.Check(id, "a watcher");
    watched.push_back(w.state());
  });
  ASSERT_TRUE(watch.ok()) << watch.status();

  std::vector<std::string> heard;
  TaskListener listener{[&](const v1::AgentEvent&) {
                          probe_.Check(id, "a listener's on_event");
                          heard.push_back("event");
                        },
                        [&](const v1::TaskResult& r) {
                          probe_.Check(id, "a listener's on_result");
                          heard.push_back(absl::StrCat("result: ", r.summary()));
                        }};
  v1::RunTaskRequest run;
  run.set_worker_id(id);
  run.set_prompt("build it");
  run.set_request_id("req-1");
  uint64_t handle = 0;
  auto task = spawner_->RunTask(alice_, run, listener, &handle);
  ASSERT_TRUE(task.ok()) << task.status();
  v1::AgentEvent event;
  event.set_task_id(*task);
  event.set_sequence(1);
  spawner_->RunnerEvent(id, event);
  // The agent's own word on its task wins over its exit.
  v1::FinishTaskRequest finish;
  finish.set_worker_id(id);
  finish.set_status(v1::TASK_STATUS_SUCCEEDED);
  finish.set_summary("built");
  ASSERT_TRUE(spawner_->Finish(alice_, finish).ok());
  v1::TaskResult result;
  result.set_task_id(*task);
  result.set_status(v1::TASK_STATUS_SUCCEEDED);
  spawner_->RunnerResult(id, result);
  // A retry of the same request hears the saved result.
  std::vector<std::string> retried;
  TaskListener retry{nullptr, [&](const v1::TaskResult& r) { retried.push_back(r.summary()); }};
  auto again = spawner_->RunTask(alice_, run, retry, &handle);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *task);

  // A second task, whose caller leaves (cancel), then the worker stops.
  run.clear_request_id();
  auto second = spawner_->RunTask(alice_, run, TaskListener{[](auto&) {}, [](auto&) {}}, &handle);
  ASSERT_TRUE(second.ok()) << second.status();
  spawner_->Detach(id, handle, /*cancel=*/true);
  auto stopped = spawner_->Stop(alice_, id, "done for today");
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(stopped->state(), v1::WORKER_STATE_STOPPED);

  EXPECT_THAT(probe_.Held(), IsEmpty());
  EXPECT_THAT(store_->saved_states(),
              ElementsAre(v1::WORKER_STATE_READY, v1::WORKER_STATE_BUSY, v1::WORKER_STATE_READY,
                          v1::WORKER_STATE_BUSY, v1::WORKER_STATE_STOPPED));
  EXPECT_THAT(watched,
              ElementsAre(v1::WORKER_STATE_READY, v1::WORKER_STATE_BUSY, v1::WORKER_STATE_READY,
                          v1::WORKER_STATE_BUSY, v1::WORKER_STATE_STOPPED));
  EXPECT_THAT(heard, ElementsAre("event", "result: built"));
  EXPECT_THAT(retried, ElementsAre("built"));
  EXPECT_THAT(link->sent(), ElementsAre("welcome", "task", "task", "cancel", "close"));
  ASSERT_TRUE(store_->result(*second).has_value());
  EXPECT_EQ(store_->result(*second)->status(), v1::TASK_STATUS_CANCELLED);
  EXPECT_THAT(minter_->revoked(), ElementsAre(absl::StrCat("tok_", id)));
}

TEST_F(WorkerSpawnerLockTest, AListenerMayStartTheNextTaskFromItsResult) {
  FakeRunnerLink* link = nullptr;
  const std::string id = ReadyWorker(&link);
  ASSERT_FALSE(id.empty());
  v1::RunTaskRequest run;
  run.set_worker_id(id);
  run.set_prompt("first");
  absl::StatusOr<std::string> next = absl::UnknownError("not started");
  uint64_t handle = 0, next_handle = 0;
  TaskListener listener{[](const v1::AgentEvent&) {},
                        [&](const v1::TaskResult&) {
                          // With the lock held, this would deadlock.
                          if (!probe_.Check(id, "a listener's on_result")) return;
                          v1::RunTaskRequest then = run;
                          then.set_prompt("second");
                          next = spawner_->RunTask(
                              alice_, then, TaskListener{[](auto&) {}, [](auto&) {}}, &next_handle);
                        }};
  auto first = spawner_->RunTask(alice_, run, listener, &handle);
  ASSERT_TRUE(first.ok()) << first.status();
  v1::TaskResult result;
  result.set_task_id(*first);
  result.set_status(v1::TASK_STATUS_SUCCEEDED);
  spawner_->RunnerResult(id, result);

  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_THAT(store_->saved_states(), ElementsAre(v1::WORKER_STATE_READY, v1::WORKER_STATE_BUSY,
                                                  v1::WORKER_STATE_READY, v1::WORKER_STATE_BUSY));
  EXPECT_THAT(link->sent(), ElementsAre("welcome", "task", "task"));
  EXPECT_THAT(probe_.Held(), IsEmpty());
}

TEST_F(WorkerSpawnerLockTest, AWorkerWhoseSandboxCannotStartFailsWithItsLockFree) {
  v1::StartWorkerRequest start;
  start.mutable_config()->set_worker_type(v1::WORKER_TYPE_DEVELOPER);
  // A network needs the egress proxy, which this spawner does not have.
  start.mutable_config()->set_network_mode(v1::NETWORK_MODE_OPEN);
  auto worker = spawner_->Start(alice_, start);
  ASSERT_TRUE(worker.ok()) << worker.status();
  EXPECT_EQ(worker->state(), v1::WORKER_STATE_FAILED);
  EXPECT_THAT(worker->state_reason(), ::testing::HasSubstr("the sandbox did not start"));
  EXPECT_THAT(store_->saved_states(), ElementsAre(v1::WORKER_STATE_FAILED));
  EXPECT_THAT(minter_->revoked(), ElementsAre(absl::StrCat("tok_", worker->id())));
  EXPECT_THAT(probe_.Held(), IsEmpty());
}

}  // namespace
}  // namespace orchestrator::agents
