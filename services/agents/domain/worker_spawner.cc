#include "services/agents/domain/worker_spawner.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "services/agents/runtime/process_runtime.h"
#include "services/common/auth/mesh_identity.h"
#include "services/common/crypto/secret_box.h"
#include "services/common/pagination/page_budget.h"
#include "services/common/pagination/page_token.h"
#include "spdlog/spdlog.h"

namespace orchestrator::agents {
namespace {

namespace fs = std::filesystem;
using google::protobuf::util::TimeUtil;

constexpr char kStoppedForPause[] =
    "paused: its runtime cannot freeze a worker, so it stopped; its workspace stays, and the "
    "next task starts a new worker on it";

google::protobuf::Timestamp Now() {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(absl::Now()));
}

bool Terminal(v1::WorkerState s) {
  return s == v1::WORKER_STATE_STOPPED || s == v1::WORKER_STATE_FAILED;
}

std::string StateName(v1::WorkerState s) {
  std::string name = v1::WorkerState_Name(s).substr(strlen("WORKER_STATE_"));
  return absl::AsciiStrToLower(name);
}

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

const std::regex& VariableName() {
  static const auto* name = new std::regex("[A-Z_][A-Z0-9_]{0,63}");
  return *name;
}

// Plain environment variables a caller gives a worker or a command.
absl::Status CheckEnvironment(const std::string& field,
                              const google::protobuf::Map<std::string, std::string>& env) {
  for (const auto& [k, v] : env) {
    if (!std::regex_match(k, VariableName())) {
      return Invalid(field, absl::StrCat("'", k, "' is not a variable name"));
    }
    if (absl::StartsWith(k, "ORCHESTRATOR_") || k == "HOME" || k == "PATH") {
      return Invalid(field, absl::StrCat("'", k, "' is set by the spawner"));
    }
    if (v.find('\0') != std::string::npos) {
      return Invalid(field, absl::StrCat("'", k, "' must not contain NUL"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckConfig(const v1::WorkerConfig& c) {
  if (c.worker_type() == v1::WORKER_TYPE_UNSPECIFIED) {
    return Invalid("config.worker_type", "required (po or developer)");
  }
  for (int i = 0; i < c.allowed_commands_size(); ++i) {
    if (!IsValidPermissionPattern(c.allowed_commands(i))) {
      return Invalid(absl::StrCat("config.allowed_commands[", i, "]"),
                     absl::StrCat("'", c.allowed_commands(i),
                                  "' is not a permission (lower-case words with dots, optionally "
                                  "ending .*)"));
    }
  }
  static const std::regex kCapability("[a-z][a-z0-9-]{0,31}");
  for (int i = 0; i < c.capabilities_size(); ++i) {
    if (!std::regex_match(c.capabilities(i), kCapability)) {
      return Invalid(absl::StrCat("config.capabilities[", i, "]"),
                     "lower-case letters, digits and dashes");
    }
  }
  if (auto s = CheckEnvironment("config.environment", c.environment()); !s.ok()) return s;
  for (int i = 0; i < c.secret_names_size(); ++i) {
    const std::string field = absl::StrCat("config.secret_names[", i, "]");
    if (!std::regex_match(c.secret_names(i), VariableName())) {
      return Invalid(field, absl::StrCat("'", c.secret_names(i), "' is not a variable name"));
    }
    if (c.environment().contains(c.secret_names(i))) {
      return Invalid(field, absl::StrCat("'", c.secret_names(i), "' is in config.environment too"));
    }
  }
  for (int i = 0; i < c.egress_allow_size(); ++i) {
    if (auto t = ParseEgressTarget(c.egress_allow(i)); !t.ok()) {
      return Invalid(absl::StrCat("config.egress_allow[", i, "]"),
                     std::string(t.status().message()));
    }
  }
  if (c.secret_names_size() > 0 && c.project_id().empty()) {
    return Invalid("config.project_id", "required to grant project secrets");
  }
  if (c.instructions().size() > 256 * 1024)
    return Invalid("config.instructions", "at most 256 KiB");
  const auto& l = c.limits();
  if (l.memory_bytes() < 0) return Invalid("config.limits.memory_bytes", "must not be negative");
  if (l.max_pids() < 0) return Invalid("config.limits.max_pids", "must not be negative");
  if (l.cpu_millis() < 0) return Invalid("config.limits.cpu_millis", "must not be negative");
  if (l.has_task_timeout() && l.task_timeout().seconds() < 0) {
    return Invalid("config.limits.task_timeout", "must not be negative");
  }
  return absl::OkStatus();
}

constexpr absl::Duration kDefaultCommandTimeout = absl::Minutes(10);
constexpr absl::Duration kMaxCommandTimeout = absl::Hours(1);

absl::Status CheckCommand(const v1::WorkspaceCommand& c) {
  if (c.argv().empty() || c.argv(0).empty()) {
    return Invalid("command.argv", "required: the program, then its arguments");
  }
  size_t argv_bytes = 0;
  for (int i = 0; i < c.argv_size(); ++i) {
    if (c.argv(i).find('\0') != std::string::npos) {
      return Invalid(absl::StrCat("command.argv[", i, "]"), "must not contain NUL");
    }
    argv_bytes += c.argv(i).size() + 1;
  }
  if (argv_bytes > 256 * 1024) return Invalid("command.argv", "at most 256 KiB in all");
  const std::string& dir = c.working_directory();
  if (absl::StartsWith(dir, "/")) {
    return Invalid("command.working_directory", "relative to /workspace, not absolute");
  }
  if (dir.find('\0') != std::string::npos) {
    return Invalid("command.working_directory", "must not contain NUL");
  }
  for (absl::string_view part : absl::StrSplit(dir, '/')) {
    if (part == "..") return Invalid("command.working_directory", "must not contain \"..\"");
  }
  if (auto s = CheckEnvironment("command.environment", c.environment()); !s.ok()) return s;
  if (c.stdin().size() > 3 * 1024 * 1024) return Invalid("command.stdin", "at most 3 MiB");
  return absl::OkStatus();
}

// `task` as it is kept: a command's input and its variables' values may be
// secret (a token for git), and are the runner's only.
v1::Task Recorded(const v1::Task& task) {
  v1::Task kept = task;
  if (kept.has_command()) {
    kept.mutable_command()->clear_stdin();
    for (auto& [name, value] : *kept.mutable_command()->mutable_environment()) value.clear();
  }
  return kept;
}

}  // namespace

std::string RuntimeKey(v1::AgentType agent, const std::vector<std::string>& capabilities) {
  std::set<std::string> caps;
  for (const auto& c : capabilities) caps.insert(absl::AsciiStrToLower(c));
  const std::string text =
      absl::StrCat("agent=", static_cast<int>(agent), ";capabilities=", absl::StrJoin(caps, ","));
  uint64_t h = 1469598103934665603ULL;  // FNV-1a: stable across builds and machines
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 1099511628211ULL;
  }
  return absl::StrCat("rt_", absl::Hex(h, absl::kZeroPad16));
}

WorkerSpawner::WorkerSpawner(SpawnerOptions options, std::shared_ptr<WorkerStore> store,
                             std::shared_ptr<TokenMinter> minter,
                             std::shared_ptr<SecretSource> secrets,
                             std::shared_ptr<EgressGateway> egress)
    : options_(std::move(options)),
      store_(std::move(store)),
      minter_(std::move(minter)),
      secrets_(std::move(secrets)),
      egress_(std::move(egress)),
      runtime_(options_.runtime != nullptr ? options_.runtime
                                           : std::make_shared<ProcessRuntime>(ProcessRuntimeOptions{
                                                 .root_dir = options_.root_dir,
                                                 .bin_dir = options_.bin_dir,
                                                 .tool_dirs = options_.tool_dirs,
                                                 .library_dirs = options_.library_dirs,
                                                 .mesh_socket = options_.mesh_socket,
                                                 .unsandboxed = options_.unsandboxed,
                                                 .default_max_pids = options_.default_max_pids})) {}

WorkerSpawner::~WorkerSpawner() { Shutdown(); }

// --- state changes (with the worker's lock held) ----------------------------------

namespace {

void Persist(WorkerStore& store, const v1::Worker& w) {
  if (auto s = store.SaveWorker(w); !s.ok()) {
    spdlog::warn("agents: worker {} not saved: {}", w.id(), s.ToString());
  }
}

}  // namespace

absl::Status WorkerSpawner::Recover() {
  auto live = store_->ListLiveWorkers();
  if (!live.ok()) return live.status();
  for (auto& w : *live) {
    const std::string reason = "orchestratord restarted; the worker's sandbox ended with it";
    auto tasks = store_->RunningTasks(w.id());
    if (tasks.ok()) {
      for (const auto& t : *tasks) {
        v1::TaskResult r;
        r.set_task_id(t.id());
        r.set_status(v1::TASK_STATUS_FAILED);
        r.set_summary(reason);
        *r.mutable_end_time() = Now();
        (void)store_->SaveResult(r);
      }
    }
    w.set_state(v1::WORKER_STATE_FAILED);
    w.set_state_reason(reason);
    w.clear_current_task_id();
    *w.mutable_update_time() = Now();
    *w.mutable_end_time() = Now();
    Persist(*store_, w);
    if (auto token = store_->TokenOf(w.id()); token.ok() && !token->empty())
      minter_->Revoke(*token);
    runtime_->Forget(w.id());
    spdlog::info("agents: worker {} was orphaned by a restart: FAILED", w.id());
  }
  return absl::OkStatus();
}

void WorkerSpawner::StartMonitor() {
  if (monitor_.joinable()) return;
  monitor_ = std::thread([this] { MonitorLoop(); });
}

void WorkerSpawner::Shutdown() {
  stopping_ = true;
  if (monitor_.joinable()) monitor_.join();
  std::vector<std::pair<std::string, std::shared_ptr<Live>>> all;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, l] : live_) all.emplace_back(id, l);
  }
  for (auto& [id, l] : all) {
    {
      absl::MutexLock lock(&l->mu);
      if (!Terminal(l->worker.state())) {
        TransitionLocked(*l, v1::WORKER_STATE_STOPPED, "orchestratord shut down");
      }
    }
    l->outbox.Settle();
  }
  // Only now: a runner's link is used until RunnerGone, which settles, finds it.
  absl::MutexLock lock(&mu_);
  for (auto& [id, l] : all) {
    if (auto it = live_.find(id); it != live_.end() && it->second == l) live_.erase(it);
  }
}

void WorkerSpawner::TransitionLocked(Live& l, v1::WorkerState state, const std::string& reason) {
  v1::Worker& w = l.worker;
  if (Terminal(w.state())) return;
  w.set_state(state);
  w.set_state_reason(reason);
  *w.mutable_update_time() = Now();
  if (state == v1::WORKER_STATE_READY && !w.has_ready_time()) *w.mutable_ready_time() = Now();
  std::function<void()> tell_listeners;
  if (Terminal(state)) {
    *w.mutable_end_time() = Now();
    if (!l.task_id.empty()) {
      v1::TaskResult r;
      r.set_task_id(l.task_id);
      r.set_status(state == v1::WORKER_STATE_STOPPED ? v1::TASK_STATUS_CANCELLED
                                                     : v1::TASK_STATUS_FAILED);
      r.set_summary(reason);
      tell_listeners = EndTaskLocked(l, std::move(r));
    }
    l.outbox.Post([this, link = std::exchange(l.link, nullptr),
                   sandbox = std::shared_ptr<RunningWorker>(std::move(l.running)), id = w.id(),
                   token_id = l.token_id, reason] {
      if (link != nullptr) link->Close(absl::CancelledError(reason));
      if (sandbox) sandbox->Kill();
      if (egress_) egress_->Close(id);
      if (!token_id.empty()) minter_->Revoke(token_id);
    });
  }
  std::vector<std::shared_ptr<Watcher>> watchers;
  for (auto& [h, watcher] : l.watchers) watchers.push_back(watcher);
  if (Terminal(state)) l.watchers.clear();
  l.outbox.Post([this, snapshot = w, watchers = std::move(watchers), reason] {
    Persist(*store_, snapshot);
    spdlog::info("agents: worker {} {}{}", snapshot.id(), StateName(snapshot.state()),
                 reason.empty() ? "" : ": " + reason);
    for (auto& watcher : watchers) (*watcher)(snapshot);
  });
  if (tell_listeners) l.outbox.Post(std::move(tell_listeners));
}

void WorkerSpawner::PersistLocked(Live& l) {
  l.outbox.Post([this, w = l.worker] { Persist(*store_, w); });
}

std::function<void()> WorkerSpawner::EndTaskLocked(Live& l, v1::TaskResult result) {
  if (l.task_id.empty() || result.task_id() != l.task_id) return nullptr;
  if (!result.has_end_time()) *result.mutable_end_time() = Now();
  if (!result.agent_session_id().empty()) l.worker.set_agent_session_id(result.agent_session_id());
  l.worker.clear_current_task_id();
  l.task_id.clear();
  auto saved = std::make_shared<v1::TaskResult>(std::move(result));
  l.outbox.Post([this, saved] {
    // What the agent declared with `orchestrator finish` (saved by an
    // effect posted before this one) wins over its exit.
    if (auto finish = store_->FinishOf(saved->task_id()); finish.ok() && finish->has_value()) {
      const auto& f = **finish;
      if (saved->status() == v1::TASK_STATUS_SUCCEEDED && f.status() == v1::TASK_STATUS_FAILED) {
        saved->set_status(v1::TASK_STATUS_FAILED);
      }
      if (!f.summary().empty()) saved->set_summary(f.summary());
      if (f.has_payload()) *saved->mutable_payload() = f.payload();
    }
    if (auto s = store_->SaveResult(*saved); !s.ok()) {
      spdlog::warn("agents: result of task {} not saved: {}", saved->task_id(), s.ToString());
    }
  });
  return [saved, listeners = std::exchange(l.listeners, {})] {
    for (auto& [h, listener] : listeners) listener->on_result(*saved);
  };
}

std::string WorkerSpawner::RefusalLocked(Live& l) {
  const auto state = l.worker.state();
  if (state == v1::WORKER_STATE_READY && l.link != nullptr) return "";
  return state == v1::WORKER_STATE_BUSY       ? absl::StrCat("is busy with task ", l.task_id)
         : state == v1::WORKER_STATE_PAUSED   ? "is paused; resume it first"
         : state == v1::WORKER_STATE_STARTING ? "is still starting; watch it until it is ready"
                                              : absl::StrCat("is ", StateName(state));
}

// --- lookups ---------------------------------------------------------------------

std::shared_ptr<WorkerSpawner::Live> WorkerSpawner::Find(const std::string& worker_id) {
  absl::MutexLock lock(&mu_);
  auto it = live_.find(worker_id);
  return it == live_.end() ? nullptr : it->second;
}

absl::StatusOr<std::shared_ptr<WorkerSpawner::Live>> WorkerSpawner::Visible(
    const Principal& caller, const std::string& worker_id) {
  auto l = Find(worker_id);
  if (l != nullptr) {
    absl::MutexLock lock(&l->mu);
    if (CanSeeOwner(caller, l->worker.owner_id())) return l;
  }
  return absl::NotFoundError(absl::StrCat("worker '", worker_id, "' not found"));
}

// A workspace id as NewId("wsp_") makes them: one path component, no dots.
static bool IsWorkspaceId(absl::string_view id) {
  if (!absl::StartsWith(id, "wsp_") || id.size() < 5 || id.size() > 64) return false;
  for (char c : id.substr(4)) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  }
  return true;
}

// --- starting ----------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<RunningWorker>> WorkerSpawner::Launch(
    const v1::Worker& w, const std::string& token,
    const std::map<std::string, std::string>& secrets, bool operator_environment,
    const std::string& repository_url) {
  if (auto s = runtime_->PrepareWorkspace(w.workspace_id(), w.owner_id()); !s.ok()) return s;
  WorkerLaunch launch;
  launch.worker_id = w.id();
  launch.owner_id = w.owner_id();
  launch.workspace_id = w.workspace_id();
  launch.memory_bytes = w.config().limits().memory_bytes();
  launch.max_pids = w.config().limits().max_pids();
  launch.cpu_millis = w.config().limits().cpu_millis();
  auto egress = OpenEgress(w, repository_url);
  if (!egress.ok()) return egress.status();
  launch.egress_socket = *std::move(egress);
  for (const auto& [k, v] : w.config().environment()) launch.env[k] = v;
  // Granted secrets by name and the operator's environment (for the
  // workers given it), in the runner's environment only: never in the
  // worker's record, its logs or its events. The operator's values win.
  for (const auto& [k, v] : secrets) launch.env[k] = v;
  if (operator_environment) {
    for (const auto& [k, v] : options_.operator_environment) launch.env[k] = v;
  }
  launch.env["ORCHESTRATOR_TOKEN"] = token;
  launch.env["ORCHESTRATOR_WORKER_ID"] = w.id();
  return runtime_->Start(launch);
}

absl::StatusOr<std::string> WorkerSpawner::OpenEgress(const v1::Worker& w,
                                                      const std::string& repository_url) {
  if (w.config().network_mode() == v1::NETWORK_MODE_ISOLATED) return std::string();
  auto allow = AllowlistFor(w.config(), options_.egress, repository_url);
  if (!allow.ok()) return allow.status();
  if (egress_ == nullptr) {
    return absl::FailedPreconditionError(
        "config.network_mode: no egress proxy runs here; only NETWORK_MODE_ISOLATED workers");
  }
  return egress_->Open(w.id(), std::move(*allow));
}

absl::StatusOr<v1::Worker> WorkerSpawner::Start(const Principal& caller,
                                                const v1::StartWorkerRequest& req) {
  if (req.operator_environment() && !IsMesh(caller)) {
    return absl::PermissionDeniedError(
        "operator_environment: only the mesh may give a worker the operator's environment");
  }
  v1::WorkerConfig config = req.config();
  if (auto s = CheckConfig(config); !s.ok()) return s;
  if (auto s = runtime_->Available(); !s.ok()) return s;
  if (config.agent_type() == v1::AGENT_TYPE_UNSPECIFIED) {
    config.set_agent_type(v1::AGENT_TYPE_SCRIPTED);
  }
  if (config.network_mode() == v1::NETWORK_MODE_UNSPECIFIED) {
    // Agents that call a model API need a way out (the egress proxy, never
    // the host's network); the scripted one does not.
    config.set_network_mode(config.agent_type() == v1::AGENT_TYPE_SCRIPTED
                                ? v1::NETWORK_MODE_ISOLATED
                                : v1::NETWORK_MODE_OPEN);
  }
  std::string workspace_id = config.workspace_id();
  if (!workspace_id.empty()) {
    // One path component the spawner made, never a path: "wsp_a/work/d" with
    // a symlink planted by an agent would bind any host directory.
    if (!IsWorkspaceId(workspace_id)) {
      return absl::NotFoundError(
          absl::StrCat("config.workspace_id: workspace '", workspace_id, "' not found"));
    }
    auto owner_id = runtime_->WorkspaceOwner(workspace_id);
    if (!owner_id.ok() && owner_id.status().code() != absl::StatusCode::kNotFound) {
      return owner_id.status();
    }
    if (!owner_id.ok() || (*owner_id != caller.user_id && !caller.admin)) {
      return absl::NotFoundError(
          absl::StrCat("config.workspace_id: workspace '", workspace_id, "' not found"));
    }
  } else {
    workspace_id = NewId("wsp_");
  }
  v1::Worker w;
  w.set_id(NewId("wrk_"));
  w.set_owner_id(caller.user_id);
  *w.mutable_config() = config;
  w.mutable_config()->set_workspace_id(workspace_id);
  w.set_state(v1::WORKER_STATE_STARTING);
  w.set_runtime(options_.runtime_kind);
  w.set_runtime_key(RuntimeKey(config.agent_type(),
                               {config.capabilities().begin(), config.capabilities().end()}));
  w.set_workspace_id(workspace_id);
  *w.mutable_create_time() = Now();
  *w.mutable_update_time() = w.create_time();

  std::map<std::string, std::string> secrets;
  if (config.secret_names_size() > 0) {
    if (secrets_ == nullptr) {
      return absl::FailedPreconditionError(
          "config.secret_names: this agents component cannot reach ProjectService to reveal "
          "project secrets");
    }
    for (int i = 0; i < config.secret_names_size(); ++i) {
      auto value = secrets_->Reveal(caller, config.project_id(), config.secret_names(i));
      if (!value.ok()) {
        return absl::Status(value.status().code(), absl::StrCat("config.secret_names[", i,
                                                                "]: ", value.status().message()));
      }
      secrets[config.secret_names(i)] = std::move(*value);
    }
  }
  // The "git" capability: the project's repository, through the egress proxy.
  std::string repository_url;
  if (ReachesProjectRepository(config)) {
    if (secrets_ == nullptr) {
      return absl::FailedPreconditionError(
          "config.capabilities: this agents component cannot reach ProjectService to find the "
          "project's repository");
    }
    auto url = secrets_->RepositoryOf(caller, config.project_id());
    if (!url.ok()) {
      return absl::Status(url.status().code(),
                          absl::StrCat("config.project_id: ", url.status().message()));
    }
    repository_url = *std::move(url);
  }
  std::vector<std::string> grants(config.allowed_commands().begin(),
                                  config.allowed_commands().end());
  grants.push_back("runner.connect");
  grants.push_back("agent.task.finish");
  // The git host serves a token the repository of a project it may get.
  if (!repository_url.empty()) grants.push_back("project.get");
  // The worker's agent reaches only the project it was started for.
  auto token = minter_->Mint(caller, w.id(), config.project_id(), grants);
  if (!token.ok()) return token.status();

  auto live = std::make_shared<Live>();
  live->token_id = token->token_id;
  live->started = options_.clock();
  {
    absl::MutexLock lock(&live->mu);
    live->worker = w;
  }
  // What a runner's hello posts meanwhile (READY) waits for the row.
  live->outbox.Hold();
  {
    absl::MutexLock all(&mu_);
    live_[w.id()] = live;
  }
  // The sandbox starts while the worker is recorded.
  absl::StatusOr<std::unique_ptr<RunningWorker>> sandbox =
      absl::UnavailableError("the sandbox launcher is shutting down");
  absl::Notification launched;
  const std::string token_value = token->value;
  const bool submitted = launcher_
                             .Submit([&, worker = w] {
                               sandbox = Launch(worker, token_value, secrets,
                                                req.operator_environment(), repository_url);
                               launched.Notify();
                             })
                             .ok();
  bool created = false;
  auto stored = store_->CreateWorker(w, req.request_id(), token->token_id, &created);
  if (submitted) launched.WaitForNotification();
  if (!stored.ok() || !created) {
    // A failure, or a retry of a request that started a worker already.
    live->outbox.Release();
    if (sandbox.ok()) (*sandbox)->Kill();
    if (egress_) egress_->Close(w.id());
    {
      absl::MutexLock all(&mu_);
      live_.erase(w.id());
    }
    minter_->Revoke(token->token_id);
    return stored;
  }
  v1::Worker started = *stored;
  {
    absl::MutexLock lock(&live->mu);
    if (!sandbox.ok()) {
      TransitionLocked(*live, v1::WORKER_STATE_FAILED,
                       absl::StrCat("the sandbox did not start: ", sandbox.status().message()));
      started = live->worker;
    } else if (Terminal(live->worker.state())) {
      // Stopped meanwhile (a shutdown): the sandbox goes after the rest.
      live->outbox.Post([s = std::shared_ptr<RunningWorker>(std::move(*sandbox))] { s->Kill(); });
    } else {
      live->running = std::move(*sandbox);
    }
  }
  live->outbox.Release();
  return started;
}

// --- reading ---------------------------------------------------------------------

absl::StatusOr<v1::Worker> WorkerSpawner::Get(const Principal& caller, const std::string& id) {
  auto w = store_->GetWorker(id);
  if (!w.ok() || !CanSeeOwner(caller, w->owner_id())) {
    return absl::NotFoundError(absl::StrCat("worker '", id, "' not found"));
  }
  return w;
}

absl::StatusOr<v1::ListWorkersResponse> WorkerSpawner::List(const Principal& caller,
                                                            const v1::ListWorkersRequest& req) {
  auto owner_filter = OwnerFilter(caller, req.owner_id());
  if (!owner_filter.ok()) return owner_filter.status();
  const std::string& owner = *owner_filter;
  const std::string filters = absl::StrCat(owner, "|", static_cast<int>(req.state()), "|",
                                           static_cast<int>(req.worker_type()));
  auto page = ParsePageRequest(req.page_size(), req.page_token(), filters, 50, 500);
  if (!page.ok()) return page.status();
  std::optional<std::pair<int64_t, std::string>> after;
  if (page->after.size() == 2) {
    int64_t micros = 0;
    if (!absl::SimpleAtoi(page->after[0], &micros)) return Invalid("page_token", "malformed");
    after = std::make_pair(micros, page->after[1]);
  }
  auto rows =
      store_->ListWorkers(owner, req.state(), req.worker_type(), page->page_size + 1, after);
  if (!rows.ok()) return rows.status();
  v1::ListWorkersResponse resp;
  const int n = std::min<int>(static_cast<int>(rows->size()), page->page_size);
  PageBudget budget;  // a page also stops at a byte budget
  for (int i = 0; i < n && budget.Take((*rows)[i]); ++i) *resp.add_workers() = (*rows)[i];
  if (static_cast<int>(rows->size()) > resp.workers_size()) {
    const auto& last = resp.workers(resp.workers_size() - 1);
    resp.set_next_page_token(MakePageToken(
        filters, {absl::StrCat(TimeUtil::TimestampToMicroseconds(last.create_time())), last.id()}));
  }
  return resp;
}

// --- lifecycle ---------------------------------------------------------------------

absl::StatusOr<v1::Worker> WorkerSpawner::Pause(const Principal& caller, const std::string& id) {
  auto l = Visible(caller, id);
  if (!l.ok())
    return Get(caller, id).ok() ? absl::FailedPreconditionError(
                                      absl::StrCat("worker '", id, "' has ended; nothing to pause"))
                                : l.status();
  Live& live = **l;
  v1::Worker paused;
  {
    absl::MutexLock lock(&live.mu);
    const auto state = live.worker.state();
    if (state == v1::WORKER_STATE_PAUSED) return live.worker;
    if ((state != v1::WORKER_STATE_READY && state != v1::WORKER_STATE_BUSY) ||
        live.running == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat("worker '", id, "' is ", StateName(state),
                                                        "; only a ready or busy worker can pause"));
    }
    if (!runtime_->CanFreeze()) {
      // Its runtime cannot freeze it: it stops (its workspace stays), and
      // the next task (the session's next message) starts a new one there.
      TransitionLocked(live, v1::WORKER_STATE_STOPPED, kStoppedForPause);
    } else {
      if (auto s = live.running->Freeze(); !s.ok()) return s;
      live.before_pause = state;
      TransitionLocked(live, v1::WORKER_STATE_PAUSED, "paused");
    }
    paused = live.worker;
  }
  live.outbox.Settle();
  return paused;
}

absl::StatusOr<v1::Worker> WorkerSpawner::Resume(const Principal& caller, const std::string& id) {
  auto l = Visible(caller, id);
  if (!l.ok())
    return Get(caller, id).ok() ? absl::FailedPreconditionError(
                                      absl::StrCat("worker '", id, "' has ended; start a new one"))
                                : l.status();
  Live& live = **l;
  v1::Worker resumed;
  {
    absl::MutexLock lock(&live.mu);
    if (live.worker.state() != v1::WORKER_STATE_PAUSED) {
      return absl::FailedPreconditionError(
          absl::StrCat("worker '", id, "' is ", StateName(live.worker.state()), ", not paused"));
    }
    if (auto s = live.running->Thaw(); !s.ok()) return s;
    TransitionLocked(live, live.before_pause, "");
    resumed = live.worker;
  }
  live.outbox.Settle();
  return resumed;
}

absl::StatusOr<v1::Worker> WorkerSpawner::Stop(const Principal& caller, const std::string& id,
                                               const std::string& reason) {
  auto l = Visible(caller, id);
  if (!l.ok()) return Get(caller, id);  // ended already: stopping again changes nothing
  Live& live = **l;
  v1::Worker stopped;
  {
    absl::MutexLock lock(&live.mu);
    if (live.worker.state() == v1::WORKER_STATE_PAUSED && live.running)
      live.running->Thaw().IgnoreError();
    TransitionLocked(live, v1::WORKER_STATE_STOPPED,
                     reason.empty() ? absl::StrCat("stopped by ", caller.user_name) : reason);
    stopped = live.worker;
  }
  live.outbox.Settle();
  return stopped;
}

absl::StatusOr<uint64_t> WorkerSpawner::Watch(const Principal& caller, const std::string& id,
                                              std::function<void(const v1::Worker&)> on_change) {
  auto l = Visible(caller, id);
  if (!l.ok()) {
    auto ended = Get(caller, id);
    if (!ended.ok()) return ended.status();
    on_change(*ended);  // its final state; nothing more will come
    return 0;
  }
  Live& live = **l;
  const uint64_t handle = next_handle_++;
  {
    absl::MutexLock lock(&live.mu);
    auto watcher = std::make_shared<Watcher>(std::move(on_change));
    // After the changes queued before it, before those queued after it.
    live.outbox.Post([watcher, w = live.worker] { (*watcher)(w); });
    if (!Terminal(live.worker.state())) live.watchers.emplace(handle, std::move(watcher));
  }
  live.outbox.Settle();
  return handle;
}

void WorkerSpawner::Unwatch(const std::string& id, uint64_t handle) {
  if (auto l = Find(id)) {
    absl::MutexLock lock(&l->mu);
    l->watchers.erase(handle);
  }
}

// --- tasks -------------------------------------------------------------------------

absl::StatusOr<std::string> WorkerSpawner::RunTask(const Principal& caller,
                                                   const v1::RunTaskRequest& req,
                                                   TaskListener listener, uint64_t* handle) {
  if (req.prompt().empty()) return Invalid("prompt", "required");
  if (req.prompt().size() > 256 * 1024) return Invalid("prompt", "at most 256 KiB");
  v1::Task task;
  task.set_prompt(req.prompt());
  task.set_agent_session_id(req.agent_session_id());
  task.set_idempotency_key(req.idempotency_key());
  task.set_origin(req.origin());
  if (req.has_timeout()) *task.mutable_timeout() = req.timeout();
  return AdmitTask(caller, req.worker_id(), std::move(task), req.request_id(), std::move(listener),
                   handle);
}

absl::StatusOr<std::string> WorkerSpawner::RunCommand(const Principal& caller,
                                                      const v1::RunCommandRequest& req,
                                                      TaskListener listener, uint64_t* handle) {
  if (auto s = CheckCommand(req.command()); !s.ok()) return s;
  absl::Duration timeout = kDefaultCommandTimeout;
  if (req.has_timeout()) {
    timeout = absl::Seconds(req.timeout().seconds()) + absl::Nanoseconds(req.timeout().nanos());
    if (timeout <= absl::ZeroDuration() || timeout > kMaxCommandTimeout) {
      return Invalid("timeout", "more than 0 and at most 1 hour");
    }
  }
  v1::Task task;
  *task.mutable_command() = req.command();
  *task.mutable_timeout() = TimeUtil::MillisecondsToDuration(absl::ToInt64Milliseconds(timeout));
  return AdmitTask(caller, req.worker_id(), std::move(task), req.request_id(), std::move(listener),
                   handle);
}

absl::StatusOr<std::string> WorkerSpawner::AdmitTask(const Principal& caller,
                                                     const std::string& worker_id, v1::Task task,
                                                     const std::string& request_id,
                                                     TaskListener listener, uint64_t* handle) {
  auto l = Visible(caller, worker_id);
  if (!l.ok()) {
    auto ended = Get(caller, worker_id);
    if (!ended.ok()) return ended.status();
    return absl::FailedPreconditionError(absl::StrCat("worker '", worker_id, "' has ended (",
                                                      ended->state_reason(), "); start a new one"));
  }
  Live& live = **l;
  task.set_id(NewId("tsk_"));
  task.set_worker_id(worker_id);
  *task.mutable_create_time() = Now();
  const v1::Task recorded = Recorded(task);
  std::optional<v1::Task> earlier;  // the task a retry's first request started
  std::string refusal;              // why the worker cannot take the task
  {
    // One admission at a time checks the worker, inserts its task and
    // claims the worker; the insert happens with the worker's lock free.
    absl::MutexLock admit(&live.admission);
    bool inserted = false;
    if (!request_id.empty()) {
      bool created = false;
      auto stored = store_->CreateTask(recorded, request_id, &created);
      if (!stored.ok()) return stored.status();
      if (!created) earlier = std::move(*stored);
      inserted = created;
    } else {
      absl::MutexLock lock(&live.mu);
      refusal = RefusalLocked(live);
    }
    if (earlier) {
      // A retry: attach to the task the first request started, or (below) get its result.
      absl::MutexLock lock(&live.mu);
      if (earlier->id() == live.task_id) {
        *handle = next_handle_++;
        live.listeners.emplace(*handle, std::make_shared<TaskListener>(std::move(listener)));
        return earlier->id();
      }
    } else {
      if (refusal.empty() && !inserted) {
        bool created = false;
        auto stored = store_->CreateTask(recorded, "", &created);
        if (!stored.ok()) return stored.status();
        inserted = true;
      }
      if (refusal.empty()) {
        absl::MutexLock lock(&live.mu);
        refusal = RefusalLocked(live);  // again: it may have moved on during the insert
        if (refusal.empty()) {
          live.task_id = task.id();
          live.worker.set_current_task_id(task.id());
          *handle = next_handle_++;
          live.listeners.emplace(*handle, std::make_shared<TaskListener>(std::move(listener)));
          TransitionLocked(live, v1::WORKER_STATE_BUSY, "");
          v1::ConnectResponse send;
          *send.mutable_task() = task;
          live.outbox.Post([link = live.link, send = std::move(send)] { link->Send(send); });
        }
      }
      if (!refusal.empty() && inserted) {
        // A retry of this request gets the refusal as the task's result.
        v1::TaskResult refused;
        refused.set_task_id(task.id());
        refused.set_status(v1::TASK_STATUS_FAILED);
        refused.set_summary(absl::StrCat("worker ", refusal));
        (void)store_->SaveResult(refused);
      }
    }
  }
  if (!refusal.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("worker '", worker_id, "' ", refusal));
  }
  // The claim's effects; for a retry whose first task ended, that task's saved result.
  live.outbox.Settle();
  if (!earlier) return task.id();
  *handle = next_handle_++;
  auto result = store_->ResultOf(earlier->id());
  if (!result.ok()) return result.status();
  if (result->has_value()) listener.on_result(**result);
  return earlier->id();
}

void WorkerSpawner::Detach(const std::string& worker_id, uint64_t handle, bool cancel) {
  auto l = Find(worker_id);
  if (l == nullptr) return;
  {
    absl::MutexLock lock(&l->mu);
    if (l->listeners.erase(handle) == 0) return;
    if (!cancel || !l->listeners.empty() || l->task_id.empty() || l->link == nullptr) return;
    v1::ConnectResponse send;
    send.mutable_cancel()->set_task_id(l->task_id);
    send.mutable_cancel()->set_reason("the caller went away");
    l->outbox.Post([link = l->link, send = std::move(send)] { link->Send(send); });
  }
  l->outbox.Settle();
}

absl::StatusOr<std::string> WorkerSpawner::Finish(const Principal& caller,
                                                  const v1::FinishTaskRequest& req) {
  std::shared_ptr<Live> live;
  if (!req.worker_id().empty()) {
    auto l = Visible(caller, req.worker_id());
    if (!l.ok()) return l.status();
    live = *l;
  } else {
    absl::MutexLock lock(&mu_);
    for (auto& [id, l] : live_) {
      if (!caller.token_id.empty() && l->token_id == caller.token_id) live = l;
    }
    if (live == nullptr) {
      return absl::FailedPreconditionError(
          "worker_id: required unless the caller is a worker's agent token");
    }
  }
  std::string task_id;
  auto saved = std::make_shared<absl::Status>();
  {
    absl::MutexLock lock(&live->mu);
    task_id = req.task_id().empty() ? live->task_id : req.task_id();
    if (task_id.empty() || task_id != live->task_id) {
      return absl::FailedPreconditionError(absl::StrCat("worker '", live->worker.id(),
                                                        "' is not running ",
                                                        task_id.empty() ? "a task" : task_id));
    }
    if (req.status() != v1::TASK_STATUS_UNSPECIFIED && req.status() != v1::TASK_STATUS_SUCCEEDED &&
        req.status() != v1::TASK_STATUS_FAILED) {
      return Invalid("status", "succeeded or failed");
    }
    // Before the task's end, if that is queued next: it reads what is saved here.
    live->outbox.Post([this, saved, task_id, req] { *saved = store_->SaveFinish(task_id, req); });
  }
  live->outbox.Settle();
  if (!saved->ok()) return *saved;
  return task_id;
}

std::string WorkerSpawner::WorkerOfToken(const std::string& token_id) {
  if (token_id.empty()) return "";
  absl::MutexLock lock(&mu_);
  for (auto& [id, l] : live_) {
    if (l->token_id == token_id) return id;
  }
  return "";
}

// --- the runner side ------------------------------------------------------------------

absl::StatusOr<v1::WorkerConfig> WorkerSpawner::RunnerConnected(const Principal& runner,
                                                                const v1::RunnerHello& hello,
                                                                RunnerLink* link) {
  // Only the worker's own token may connect; any other caller learns the same
  // as for an unknown id, so a worker's existence leaks nothing.
  const absl::Status not_found =
      absl::NotFoundError(absl::StrCat("worker '", hello.worker_id(), "' is not running here"));
  auto l = Find(hello.worker_id());
  if (l == nullptr) return not_found;
  if (runner.token_id.empty() || runner.token_id != l->token_id) return not_found;
  v1::WorkerConfig config;
  {
    absl::MutexLock lock(&l->mu);
    if (l->worker.state() != v1::WORKER_STATE_STARTING || l->link != nullptr) {
      return absl::FailedPreconditionError(absl::StrCat("worker '", hello.worker_id(), "' is ",
                                                        StateName(l->worker.state()),
                                                        "; a runner connects once"));
    }
    l->link = link;
    // The welcome goes out before READY lets anyone send a task.
    v1::ConnectResponse welcome;
    *welcome.mutable_welcome()->mutable_config() = l->worker.config();
    l->outbox.Post([link, welcome = std::move(welcome)] { link->Send(welcome); });
    TransitionLocked(*l, v1::WORKER_STATE_READY, "");
    config = l->worker.config();
  }
  l->outbox.Settle();
  return config;
}

void WorkerSpawner::RunnerEvent(const std::string& worker_id, const v1::AgentEvent& event) {
  auto l = Find(worker_id);
  if (l == nullptr) return;
  {
    absl::MutexLock lock(&l->mu);
    if (event.task_id() != l->task_id || l->listeners.empty()) return;
    std::vector<std::shared_ptr<TaskListener>> listeners;
    for (auto& [h, listener] : l->listeners) listeners.push_back(listener);
    l->outbox.Post([listeners = std::move(listeners), event] {
      for (auto& listener : listeners) listener->on_event(event);
    });
  }
  l->outbox.Settle();
}

void WorkerSpawner::RunnerResult(const std::string& worker_id, const v1::TaskResult& result) {
  auto l = Find(worker_id);
  if (l == nullptr) return;
  {
    absl::MutexLock lock(&l->mu);
    if (result.task_id() != l->task_id) return;
    std::function<void()> tell_listeners = EndTaskLocked(*l, result);
    if (l->worker.state() == v1::WORKER_STATE_BUSY) {
      TransitionLocked(*l, v1::WORKER_STATE_READY, "");
    } else if (l->worker.state() == v1::WORKER_STATE_PAUSED) {
      l->before_pause = v1::WORKER_STATE_READY;
      PersistLocked(*l);
    }
    // Whoever hears the result finds the worker saved as it is after the task.
    if (tell_listeners) l->outbox.Post(std::move(tell_listeners));
  }
  l->outbox.Settle();
}

void WorkerSpawner::RunnerGone(const std::string& worker_id, RunnerLink* link,
                               const std::string& reason) {
  auto l = Find(worker_id);
  if (l == nullptr) return;  // gone from live_ only once its effects, the link's too, are applied
  {
    absl::MutexLock lock(&l->mu);
    if (l->link == link) {
      l->link = nullptr;
      TransitionLocked(*l, v1::WORKER_STATE_FAILED,
                       absl::StrCat("the runner's connection ended: ", reason));
    }
  }
  // Also when the worker ended otherwise: its queued effects may still use `link`.
  l->outbox.Settle();
}

void WorkerSpawner::MonitorLoop() {
  while (!stopping_) {
    absl::SleepFor(options_.monitor_interval);
    std::vector<std::shared_ptr<Live>> all;
    {
      absl::MutexLock lock(&mu_);
      for (auto& [id, l] : live_) all.push_back(l);
    }
    std::vector<std::pair<std::string, std::shared_ptr<Live>>> ended;
    for (auto& l : all) {
      {
        absl::MutexLock lock(&l->mu);
        if (!Terminal(l->worker.state())) {
          std::string ended = l->running ? l->running->Ended() : "";
          if (!ended.empty()) {
            TransitionLocked(*l, v1::WORKER_STATE_FAILED, ended);
          } else if (l->worker.state() == v1::WORKER_STATE_STARTING &&
                     options_.clock() - l->started > options_.connect_timeout) {
            TransitionLocked(*l, v1::WORKER_STATE_FAILED,
                             absl::StrCat("the runner did not connect within ",
                                          absl::FormatDuration(options_.connect_timeout),
                                          "; see workers/", l->worker.id(), ".log"));
          }
        }
      }
      l->outbox.Settle();
      absl::MutexLock lock(&l->mu);
      // Kept until its effects are applied: RunnerGone must find it until then.
      if (Terminal(l->worker.state()) && l->outbox.Idle()) {
        ended.emplace_back(l->worker.id(), l);
      }
    }
    if (!ended.empty()) {
      absl::MutexLock lock(&mu_);
      for (const auto& [id, l] : ended) {
        if (auto it = live_.find(id); it != live_.end() && it->second == l) live_.erase(it);
      }
    }
  }
}

}  // namespace orchestrator::agents
