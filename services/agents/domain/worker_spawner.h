#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "orchestrator/agents/v1/runner.pb.h"
#include "services/agents/domain/egress.h"
#include "services/agents/domain/worker_store.h"
#include "services/agents/domain/workers.h"
#include "services/agents/runtime/sandbox.h"
#include "services/agents/runtime/worker_runtime.h"
#include "services/common/auth/principal.h"
#include "services/common/executor/bounded_executor.h"
#include "services/common/executor/outbox.h"

namespace orchestrator::agents {

// Where workers run and what their sandboxes see.
struct SpawnerOptions {
  std::string root_dir;                   // workspaces/ and workers/ (logs) live here
  std::string bin_dir;                    // orchestrator-runner and orchestrator (read-only inside)
  std::vector<std::string> tool_dirs;     // agent CLIs' installs (read-only, same path inside)
  std::vector<std::string> library_dirs;  // shared libraries of the binaries outside /usr, if any
  std::string mesh_socket;   // host path of the unix socket sandboxes reach the mesh on
  bool unsandboxed = false;  // run runners as plain processes (explicit choice)
  absl::Duration connect_timeout = absl::Seconds(30);
  absl::Duration default_task_timeout = absl::Minutes(30);
  absl::Duration monitor_interval = absl::Milliseconds(200);
  // What the connect timeout is measured with.
  std::function<absl::Time()> clock = &absl::Now;
  int64_t default_max_pids = 1024;  // a fork bomb stays inside its sandbox
  // The operator's part of every networked worker's egress allowlist.
  EgressGrants egress;
  // The operator's environment for the agents it pays for (e.g.
  // ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL; --session_agent_env): given only
  // to workers the mesh starts with StartWorkerRequest.operator_environment
  // (the session manager's PO workers), in their sandbox's environment
  // only, never in a worker's record.
  std::map<std::string, std::string> operator_environment;
  // Where workers run; null: bubblewrap sandboxes on this host
  // (ProcessRuntime, from root_dir, bin_dir, tool_dirs, library_dirs,
  // mesh_socket, unsandboxed and default_max_pids above).
  std::shared_ptr<WorkerRuntime> runtime;
  v1::WorkerRuntime runtime_kind = v1::WORKER_RUNTIME_PROCESS;
};

// Mints and revokes a worker's agent token.
class TokenMinter {
 public:
  virtual ~TokenMinter() = default;
  struct Minted {
    std::string token_id, value;
  };
  // A token for worker `worker_id`, acting for `caller`'s user, limited to
  // `grants` (and to what `caller`'s own token holds) and, unless empty, to
  // project `project_id` (the token reaches no other project).
  virtual absl::StatusOr<Minted> Mint(const Principal& caller, const std::string& worker_id,
                                      const std::string& project_id,
                                      const std::vector<std::string>& grants) = 0;
  // Never blocks (a worker's stop waits for it): the revocation may
  // complete later, and is retried while the token's issuer is away.
  virtual void Revoke(const std::string& token_id) = 0;
};

// What a worker is given of its project: its granted secrets, and where
// its repository is (for the "git" capability).
class SecretSource {
 public:
  virtual ~SecretSource() = default;
  // The value of `project_id`'s secret `name`, if `caller` may see the project.
  virtual absl::StatusOr<std::string> Reveal(const Principal& caller, const std::string& project_id,
                                             const std::string& name) = 0;
  // `project_id`'s repository URL ("" when it has none yet), if `caller`
  // may see the project.
  virtual absl::StatusOr<std::string> RepositoryOf(const Principal& caller,
                                                   const std::string& project_id) = 0;
};

// The agent spawner: workers are sandboxes with orchestrator-runner inside,
// started here, watched here, and persisted in the store. A worker whose
// sandbox exits, whose runner disconnects or never connects is FAILED with
// the reason, and its running task fails with it. Owner-scoped throughout.
//
// A call that changes a worker returns once what the change does outside
// (the store, the runner, watchers and listeners, the token, the egress
// proxy) is done, in the order of the changes; none of it runs with the
// worker's lock held.
class WorkerSpawner final : public Workers {
 public:
  // `secrets` may be null: workers then cannot be granted project secrets.
  // `egress` may be null: workers then get no network (NETWORK_MODE_OPEN
  // fails to start).
  WorkerSpawner(SpawnerOptions options, std::shared_ptr<WorkerStore> store,
                std::shared_ptr<TokenMinter> minter,
                std::shared_ptr<SecretSource> secrets = nullptr,
                std::shared_ptr<EgressGateway> egress = nullptr);
  ~WorkerSpawner();

  // After a restart: workers the store still calls live lost their
  // sandboxes with the old process; they become FAILED, their tasks fail.
  absl::Status Recover();
  void StartMonitor();
  void Shutdown();  // stops every sandbox

  // PERMISSION_DENIED for req.operator_environment unless `caller` is the mesh.
  absl::StatusOr<v1::Worker> Start(const Principal& caller,
                                   const v1::StartWorkerRequest& req) override;
  absl::StatusOr<v1::Worker> Get(const Principal& caller, const std::string& worker_id) override;
  absl::StatusOr<v1::ListWorkersResponse> List(const Principal& caller,
                                               const v1::ListWorkersRequest& req) override;
  absl::StatusOr<v1::Worker> Pause(const Principal& caller, const std::string& worker_id) override;
  absl::StatusOr<v1::Worker> Resume(const Principal& caller, const std::string& worker_id) override;
  absl::StatusOr<v1::Worker> Stop(const Principal& caller, const std::string& worker_id,
                                  const std::string& reason) override;
  absl::StatusOr<std::string> Finish(const Principal& caller,
                                     const v1::FinishTaskRequest& req) override;
  // The live worker an agent token belongs to ("" if none).
  std::string WorkerOfToken(const std::string& token_id);

  // Watching a worker: `on_change` gets its current state at once, then
  // every change; returns a handle for Unwatch.
  absl::StatusOr<uint64_t> Watch(const Principal& caller, const std::string& worker_id,
                                 std::function<void(const v1::Worker&)> on_change) override;
  // No change made after this returns reaches the watcher (one being told
  // already may).
  void Unwatch(const std::string& worker_id, uint64_t handle) override;

  // Runs (or, for a request_id seen before, attaches to) a task; the
  // listener gets its events and then its result. Returns the task id.
  absl::StatusOr<std::string> RunTask(const Principal& caller, const v1::RunTaskRequest& req,
                                      TaskListener listener, uint64_t* handle) override;
  // The same for a command (Task.command): default timeout 10 minutes, at
  // most an hour.
  absl::StatusOr<std::string> RunCommand(const Principal& caller, const v1::RunCommandRequest& req,
                                         TaskListener listener, uint64_t* handle) override;
  // The caller went away: stop listening (an event being told already may
  // still arrive); `cancel` also cancels the task.
  void Detach(const std::string& worker_id, uint64_t handle, bool cancel) override;

  // The runner side (RunnerService.Connect). `link` is used until
  // RunnerGone returns for it.
  absl::StatusOr<v1::WorkerConfig> RunnerConnected(const Principal& runner,
                                                   const v1::RunnerHello& hello,
                                                   RunnerLink* link) override;
  void RunnerEvent(const std::string& worker_id, const v1::AgentEvent& event) override;
  void RunnerResult(const std::string& worker_id, const v1::TaskResult& result) override;
  void RunnerGone(const std::string& worker_id, RunnerLink* link,
                  const std::string& reason) override;

 private:
  using Watcher = std::function<void(const v1::Worker&)>;

  // One live worker. `mu` guards its state in memory and is never held
  // across a store call, an RPC or a callback: what a change does outside
  // is posted to `outbox` under `mu` and applied after it, in order.
  struct Live {
    absl::Mutex mu;
    v1::Worker worker ABSL_GUARDED_BY(mu);
    std::string token_id;  // set before the worker is published, read-only after
    absl::Time started;    // likewise
    std::unique_ptr<RunningWorker> running ABSL_GUARDED_BY(mu);
    RunnerLink* link ABSL_GUARDED_BY(mu) = nullptr;
    v1::WorkerState before_pause ABSL_GUARDED_BY(mu) = v1::WORKER_STATE_READY;
    std::map<uint64_t, std::shared_ptr<Watcher>> watchers ABSL_GUARDED_BY(mu);
    std::string task_id ABSL_GUARDED_BY(mu);
    std::map<uint64_t, std::shared_ptr<TaskListener>> listeners ABSL_GUARDED_BY(mu);
    Outbox outbox;  // posted to with `mu` held, settled after it
    // RunTask's check, insert and claim of a task, one at a time: held
    // across the task's insert (never with `mu`), taken before `mu`.
    absl::Mutex admission ABSL_ACQUIRED_BEFORE(mu);
  };

  std::shared_ptr<Live> Find(const std::string& worker_id);
  absl::StatusOr<std::shared_ptr<Live>> Visible(const Principal& caller,
                                                const std::string& worker_id);
  absl::StatusOr<std::unique_ptr<RunningWorker>> Launch(
      const v1::Worker& worker, const std::string& token,
      const std::map<std::string, std::string>& secrets, bool operator_environment,
      const std::string& repository_url);
  // The host path of `w`'s egress proxy socket; "" when it has no network.
  // `repository_url`: its project's repository, for the "git" capability.
  absl::StatusOr<std::string> OpenEgress(const v1::Worker& w, const std::string& repository_url);
  void MonitorLoop();
  // The new state, then (posted) persisted and told to watchers; on a
  // terminal state the sandbox and the token go and a running task fails.
  void TransitionLocked(Live& l, v1::WorkerState state, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(l.mu);
  // The running task ends with `result` (posted: saved). Returns what tells
  // its listeners, to post after the worker's own save (null if it was not
  // the running task).
  std::function<void()> EndTaskLocked(Live& l, v1::TaskResult result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(l.mu);
  // Posts saving the worker as it is now.
  void PersistLocked(Live& l) ABSL_EXCLUSIVE_LOCKS_REQUIRED(l.mu);
  // Gives `task` to `worker_id` for `caller` (or, for a request_id seen
  // before, attaches to the task it started): one at a time, only on a
  // READY worker; the listener hears it until Detach. Returns the task id.
  absl::StatusOr<std::string> AdmitTask(const Principal& caller, const std::string& worker_id,
                                        v1::Task task, const std::string& request_id,
                                        TaskListener listener, uint64_t* handle);
  // Why `l` cannot take a task now ("" if it can).
  static std::string RefusalLocked(Live& l) ABSL_EXCLUSIVE_LOCKS_REQUIRED(l.mu);

  const SpawnerOptions options_;
  std::shared_ptr<WorkerStore> store_;
  std::shared_ptr<TokenMinter> minter_;
  std::shared_ptr<SecretSource> secrets_;
  std::shared_ptr<EgressGateway> egress_;
  std::shared_ptr<WorkerRuntime> runtime_;
  absl::Mutex mu_;  // live_; never held while taking a worker's `mu`
  absl::flat_hash_map<std::string, std::shared_ptr<Live>> live_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> next_handle_{1};
  std::atomic<bool> stopping_{false};
  std::thread monitor_;
  // Sandboxes are forked from this one long-lived thread: a child's
  // parent-death signal follows the thread that forked it, so a sandbox
  // forked from a short-lived thread would die with that thread.
  BoundedExecutor launcher_{1, 64};
};

// The runtime key: the agent type and the sorted, de-duplicated
// capabilities, hashed; the same set in any order gives the same key.
std::string RuntimeKey(v1::AgentType agent, const std::vector<std::string>& capabilities);

}  // namespace orchestrator::agents
