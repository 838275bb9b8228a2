#include "services/engineering/domain/engineer.h"

#include <google/protobuf/util/time_util.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "services/common/validation/request_bounds.h"
#include "services/engineering/domain/prompts.h"
#include "services/engineering/domain/test_report.h"
#include "services/engineering/domain/workspace.h"

namespace orchestrator::engineering {
namespace fs = std::filesystem;
namespace av1 = agents::v1;
using google::protobuf::util::TimeUtil;

namespace {

constexpr int kMaxIterationsLimit = 10;
constexpr int kLogLinesPerIteration = 200;
constexpr size_t kSummaryMax = 4096;
constexpr size_t kEscalationOutputMax = 2048;

constexpr char kRunIdParam[] = "run_id";
constexpr char kInstructionsParam[] = "instructions";
constexpr char kAgentTypeParam[] = "agent_type";
constexpr char kMaxIterationsParam[] = "max_iterations";

google::protobuf::Timestamp Stamp(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}
absl::Time TimeOf(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(t));
}

std::string RunBranch(const std::string& run_id) { return absl::StrCat("orchestrator/", run_id); }

bool IsTerminal(v1::EngineeringRunStatus s) {
  return s == v1::ENGINEERING_RUN_STATUS_SUCCEEDED || s == v1::ENGINEERING_RUN_STATUS_FAILED ||
         s == v1::ENGINEERING_RUN_STATUS_CANCELLED;
}

std::string AgentName(av1::AgentType t) {
  switch (t) {
    case av1::AGENT_TYPE_CLAUDE_CODE:
      return "Claude Code";
    case av1::AGENT_TYPE_CODEX:
      return "Codex";
    case av1::AGENT_TYPE_FACTORY_DROID:
      return "Factory droid";
    default:
      return "scripted agent";
  }
}

std::string FirstLineOf(absl::string_view text, size_t max) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty()) return Truncated(line, max);
  }
  return "";
}

// "12.3k in / 1.1k out, $0.0123"
std::string UsageLine(const av1::Usage& u) {
  auto tokens = [](int64_t n) {
    return n >= 1000 ? absl::StrCat(n / 1000, ".", (n % 1000) / 100, "k") : absl::StrCat(n);
  };
  return absl::StrCat(tokens(u.input_tokens()), " in / ", tokens(u.output_tokens()), " out, $",
                      u.cost_usd_micros() / 1000000, ".",
                      absl::StrFormat("%04d", (u.cost_usd_micros() % 1000000) / 100));
}

// An enum value's name without its prefix ("TIMEOUT"); the number for a
// value this build does not name (a newer runner's).
std::string StatusWord(av1::TaskStatus status) {
  const std::string& name = av1::TaskStatus_Name(status);
  return name.size() > 12 ? name.substr(12) : absl::StrCat(static_cast<int>(status));
}
std::string OutcomeWord(v1::TestOutcome outcome) {
  const std::string& name = v1::TestOutcome_Name(outcome);
  return name.size() > 13 ? name.substr(13) : absl::StrCat(static_cast<int>(outcome));
}

// What a tool call did, in a few words: the command or the file.
std::string ToolSummary(const av1::ToolCall& call) {
  for (const char* key : {"command", "file_path", "path", "pattern", "url"}) {
    auto it = call.input().fields().find(key);
    if (it != call.input().fields().end() && it->second.has_string_value()) {
      return FirstLineOf(it->second.string_value(), 200);
    }
  }
  return "";
}

}  // namespace

std::string EngineeringConcurrencyKey(const std::string& project_id) {
  return absl::StrCat("engineering:", project_id);
}

absl::Status ValidateRequest(const EngineeringRequest& request) {
  if (request.project_id.empty()) return absl::InvalidArgumentError("project_id: required");
  if (absl::StripAsciiWhitespace(request.instructions).empty()) {
    return absl::InvalidArgumentError("instructions: say what to build or fix");
  }
  if (request.max_iterations < 0 || request.max_iterations > kMaxIterationsLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_iterations: 1 to ", kMaxIterationsLimit, ", or 0 for the default"));
  }
  if (!av1::AgentType_IsValid(request.agent_type)) {
    return absl::InvalidArgumentError("agent_type: unknown");
  }
  return absl::OkStatus();
}

absl::Status CheckProjectRunnable(const projects::v1::Project& project) {
  if (project.repository_url().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "project ", project.name(),
        " has no repository: scaffold it (scaffold run) or set its repository_url first"));
  }
  if (project.run_contract().test_command().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "project ", project.name(),
        " has no test command in its run contract: the platform checks every change with "
        "the project's tests, so set run_contract.test_command first"));
  }
  return absl::OkStatus();
}

absl::Status CheckBudget(RunStore& store, const std::string& owner_id,
                         const EngineeringDefaults& defaults, absl::Time now) {
  if (defaults.token_budget <= 0) return absl::OkStatus();
  UsageScope scope;
  scope.owner_id = owner_id;
  scope.since = now - defaults.budget_window;
  auto used = store.SumUsage(scope);
  if (!used.ok()) return used.status();
  const int64_t tokens = used->usage.input_tokens() + used->usage.output_tokens();
  if (tokens >= defaults.token_budget) {
    return absl::FailedPreconditionError(
        absl::StrCat("token budget: you used ", tokens, " of your ", defaults.token_budget,
                     " tokens in the last ", absl::FormatDuration(defaults.budget_window),
                     "; a new engineering run can start once older usage leaves that window"));
  }
  return absl::OkStatus();
}

jobs::EnqueueRequest EngineeringJob(const EngineeringRequest& request,
                                    const EngineeringDefaults& defaults,
                                    const std::string& run_id) {
  jobs::EnqueueRequest job;
  job.kind = kEngineeringJobKind;
  job.owner_id = request.owner_id;
  job.project_id = request.project_id;
  job.request_id = request.request_id;
  job.max_attempts = 5;
  job.concurrency_key = EngineeringConcurrencyKey(request.project_id);
  auto& params = *job.params.mutable_fields();
  params[kRunIdParam].set_string_value(run_id);
  params[kInstructionsParam].set_string_value(request.instructions);
  const av1::AgentType agent =
      request.agent_type == av1::AGENT_TYPE_UNSPECIFIED ? defaults.agent_type : request.agent_type;
  params[kAgentTypeParam].set_string_value(av1::AgentType_Name(agent));
  params[kMaxIterationsParam].set_number_value(
      request.max_iterations > 0 ? request.max_iterations : defaults.max_iterations);
  return job;
}

v1::EngineeringRun QueuedRunOf(const jobs::v1::Job& job) {
  const auto& params = job.params().fields();
  auto text = [&](const char* key) -> std::string {
    auto it = params.find(key);
    return it == params.end() ? "" : it->second.string_value();
  };
  v1::EngineeringRun run;
  run.set_id(text(kRunIdParam));
  run.set_project_id(job.project_id());
  run.set_owner_id(job.owner_id());
  run.set_job_id(job.id());
  run.set_status(v1::ENGINEERING_RUN_STATUS_QUEUED);
  run.set_instructions(text(kInstructionsParam));
  av1::AgentType agent = av1::AGENT_TYPE_SCRIPTED;
  (void)av1::AgentType_Parse(text(kAgentTypeParam), &agent);
  run.set_agent_type(agent);
  auto max = params.find(kMaxIterationsParam);
  run.set_max_iterations(max == params.end() ? 3 : static_cast<int>(max->second.number_value()));
  *run.mutable_create_time() = job.create_time();
  return run;
}

namespace {

// One handler invocation of a run: from its recorded state to its end, or
// to an error the job engine retries.
class RunAttempt {
 public:
  RunAttempt(StoredRun stored, const jobs::JobHooks& hooks, Cancellation& cancel, RunStore& runs,
             ProjectDirectory& projects, AgentDriverPtr agents, GitRemote& git,
             const EngineerOptions& options)
      : s_(std::move(stored)),
        run_(s_.run),
        hooks_(hooks),
        cancel_(cancel),
        runs_(runs),
        projects_(projects),
        agents_(std::move(agents)),
        git_(git),
        options_(options) {}

  ~RunAttempt() {
    if (!worker_id_.empty()) {
      (void)agents_->Stop(run_.owner_id(), worker_id_, "its engineering run is over");
    }
  }

  absl::StatusOr<google::protobuf::Struct> Run() {
    if (!run_.has_start_time()) *run_.mutable_start_time() = Stamp(Now());
    if (run_.iterations() == 0 && s_.progress.commit_sha.empty()) {
      if (auto s = CheckBudget(runs_, run_.owner_id(), options_.defaults, Now()); !s.ok()) {
        // A refusal ends the run; anything else (the database) is retried.
        return absl::IsFailedPrecondition(s) ? Fail(s) : s;
      }
    }
    auto project = projects_.Get(run_.owner_id(), run_.project_id());
    if (!project.ok()) {
      return absl::IsNotFound(project.status()) ? Fail(project.status()) : project.status();
    }
    project_ = *std::move(project);
    if (auto s = CheckProjectRunnable(project_); !s.ok()) return Fail(s);
    if (auto s = Prepare(); !s.ok()) return s;

    if (!s_.progress.commit_sha.empty()) {
      // A re-run after the commit was made: deliver that one, never another.
      if (workspace_->HasCommit(s_.progress.commit_sha)) return Deliver(/*resumed=*/true);
      Log("the recorded commit is gone from the workspace: the last attempt runs again");
      s_.progress.commit_sha.clear();
      run_.set_iterations(std::max(0, run_.iterations() - 1));
    }
    if (run_.iterations() > 0 && run_.iteration_history_size() >= run_.iterations() &&
        run_.iteration_history(run_.iterations() - 1).test_report().outcome() ==
            v1::TEST_OUTCOME_PASSED) {
      // Stopped after its tests passed, before the commit: commit what
      // passed (the workspace still holds it).
      auto tree = workspace_->StageTree();
      if (!tree.ok()) return tree.status();
      tree_ = *tree;
      return Commit();
    }
    if (run_.iteration_history_size() == run_.iterations() + 1) {
      const v1::EngineeringIteration& cut = run_.iteration_history(run_.iterations());
      if (cut.task_status() == av1::TASK_STATUS_SUCCEEDED && !cut.has_test_report()) {
        // Stopped while testing what the agent's turn left: the tests run
        // again, not the turn, which would find its own change done already.
        auto passed = Test(run_.iterations() + 1);
        if (!passed.ok()) return passed.status();
        if (*passed) return Commit();
      }
    }
    while (run_.iterations() < run_.max_iterations()) {
      auto passed = Iterate();
      if (!passed.ok()) return passed.status();
      if (*passed) return Commit();
    }
    return Escalate(absl::StrCat("the tests still fail after ", run_.max_iterations(),
                                 run_.max_iterations() == 1 ? " attempt" : " attempts"));
  }

 private:
  absl::Time Now() const { return options_.clock(); }

  void Progress(int percent, const std::string& message) {
    if (hooks_.progress) hooks_.progress(percent, message);
  }
  void Log(const std::string& line) {
    if (hooks_.log) hooks_.log(line);
  }

  absl::Status Save() {
    s_.run = run_;
    return runs_.Save(s_);
  }

  void SetStatus(v1::EngineeringRunStatus status) { run_.set_status(status); }

 public:
  // After an error the job will not retry: the run ends FAILED with it,
  // unless it has ended already.
  void EndWith(const absl::Status& why) {
    if (!IsTerminal(run_.status())) (void)Fail(why);
  }

 private:
  // The run ends FAILED with `why` (a permanent error: the job fails too).
  absl::Status Fail(const absl::Status& why) {
    run_.set_status(v1::ENGINEERING_RUN_STATUS_FAILED);
    run_.mutable_error()->set_code(static_cast<int>(why.code()));
    run_.mutable_error()->set_message(std::string(why.message()));
    *run_.mutable_end_time() = Stamp(Now());
    if (auto s = Save(); !s.ok()) return s;
    return why;
  }

  int PercentOf(int iteration, bool testing) const {
    const int span = 80 / std::max(1, run_.max_iterations());
    return 10 + span * (iteration - 1) + (testing ? span / 2 : 0);
  }

  // A developer worker over the run's workspace, with the repository in it.
  absl::Status Prepare() {
    SetStatus(v1::ENGINEERING_RUN_STATUS_PREPARING);
    Progress(2, "preparing: starting a developer worker");
    if (auto s = Save(); !s.ok()) return s;
    av1::StartWorkerRequest req;
    auto* c = req.mutable_config();
    c->set_worker_type(av1::WORKER_TYPE_DEVELOPER);
    c->set_agent_type(run_.agent_type());
    c->set_project_id(run_.project_id());
    c->set_instructions(WorkerInstructions(project_));
    c->add_capabilities("git");
    c->set_network_mode(av1::NETWORK_MODE_OPEN);
    c->set_workspace_id(s_.progress.workspace_id);
    c->mutable_limits()->mutable_task_timeout()->set_seconds(
        absl::ToInt64Seconds(options_.task_timeout));
    // The operator's model credentials reach the sandbox only, and only
    // for an agent that calls a model (the scripted agent calls none).
    req.set_operator_environment(run_.agent_type() != av1::AGENT_TYPE_SCRIPTED);
    auto started = agents_->Start(run_.owner_id(), req);
    if (!started.ok()) return started.status();
    worker_id_ = started->id();
    auto ready = agents_->WaitUntilStarted(run_.owner_id(), worker_id_,
                                           options_.worker_ready_timeout, cancel_);
    if (!ready.ok()) return ready.status();
    if (ready->state() != av1::WORKER_STATE_READY) {
      return absl::UnavailableError(
          absl::StrCat("the developer worker did not start: ", ready->state_reason()));
    }
    run_.set_worker_id(worker_id_);
    s_.progress.workspace_id = ready->workspace_id();
    if (auto s = Save(); !s.ok()) return s;
    workspace_ = std::make_unique<Workspace>(agents_, run_.owner_id(), worker_id_, cancel_);

    Progress(6, "preparing: cloning the repository");
    auto clone = workspace_->EnsureClone(project_.repository_url());
    if (!clone.ok()) return clone.status();
    if (s_.progress.base_commit_sha.empty()) {
      if (clone->default_branch.empty()) {
        return absl::FailedPreconditionError(
            "the workspace's clone is on no branch and the run recorded none to work on");
      }
      s_.progress.default_branch = clone->default_branch;
      s_.progress.base_commit_sha = clone->head;
      Log(absl::StrCat("cloned ", project_.repository_url(), " at ", clone->default_branch, " (",
                       clone->head.substr(0, 12), ")"));
    }
    auto base_tree = workspace_->TreeOf(s_.progress.base_commit_sha);
    if (!base_tree.ok()) return base_tree.status();
    base_tree_ = *base_tree;
    return Save();
  }

  std::string PromptFor(int iteration) const {
    if (iteration == 1) return run_.instructions();
    const v1::EngineeringIteration& before = run_.iteration_history(iteration - 2);
    std::string next;
    if (before.task_status() != av1::TASK_STATUS_SUCCEEDED) {
      next = AfterTurnFailed(before.summary());
    } else if (!before.has_test_report()) {
      next = AfterNoChange();
    } else {
      next = AfterTestsFailed(iteration - 1, run_.max_iterations(), before.test_report());
    }
    // No session to resume (the agent never said which): the task again.
    if (run_.agent_session_id().empty()) return absl::StrCat(run_.instructions(), "\n\n", next);
    return next;
  }

  // One agent turn, then the tests: true when they pass.
  absl::StatusOr<bool> Iterate() {
    const int i = run_.iterations() + 1;
    while (run_.iteration_history_size() >= i) run_.mutable_iteration_history()->RemoveLast();
    const std::string prompt = PromptFor(i);
    SetStatus(v1::ENGINEERING_RUN_STATUS_IMPLEMENTING);
    const std::string of = absl::StrCat(" (iteration ", i, " of ", run_.max_iterations(), ")");
    Progress(PercentOf(i, false), absl::StrCat("implementing", of));
    v1::EngineeringIteration* it = run_.add_iteration_history();
    it->set_number(i);
    *it->mutable_agent_start_time() = Stamp(Now());
    if (auto s = Save(); !s.ok()) return s;

    av1::RunTaskRequest req;
    req.set_worker_id(worker_id_);
    req.set_prompt(prompt);
    req.set_agent_session_id(run_.agent_session_id());
    req.mutable_timeout()->set_seconds(absl::ToInt64Seconds(options_.task_timeout));
    req.set_idempotency_key(absl::StrCat(run_.id(), "-it", i));
    int logged = 0;
    av1::Usage latest;
    std::string task_id;
    auto log = [&](const std::string& line) {
      if (logged < kLogLinesPerIteration) Log(line);
      if (++logged == kLogLinesPerIteration) Log("agent: (further events not logged)");
    };
    auto on_event = [&](const av1::AgentEvent& e) {
      if (task_id.empty()) task_id = e.task_id();
      if (e.has_session_started() && !e.session_started().agent_session_id().empty()) {
        run_.set_agent_session_id(e.session_started().agent_session_id());
      } else if (e.has_text() && !e.text().thinking()) {
        const std::string line = FirstLineOf(e.text().text(), 300);
        if (!line.empty()) log(absl::StrCat("agent: ", line));
      } else if (e.has_tool_call()) {
        const std::string what = ToolSummary(e.tool_call());
        log(absl::StrCat("agent tool ", e.tool_call().tool_name(), what.empty() ? "" : ": ", what));
      } else if (e.has_usage()) {
        latest = e.usage();
        if (!task_id.empty()) (void)runs_.RecordUsage(run_, task_id, latest, Now());
      }
    };
    auto result = agents_->RunTask(run_.owner_id(), req, on_event, cancel_);
    if (!result.ok()) return result.status();
    if (!result->task_id().empty()) task_id = result->task_id();
    if (result->has_usage()) latest = result->usage();
    if (!task_id.empty()) {
      if (auto s = runs_.RecordUsage(run_, task_id, latest, Now()); !s.ok()) return s;
    }
    if (!result->agent_session_id().empty()) {
      run_.set_agent_session_id(result->agent_session_id());
    }
    it->set_task_status(result->status());
    *it->mutable_usage() = latest;
    *it->mutable_agent_end_time() = Stamp(Now());
    Log(absl::StrCat("agent usage: ", UsageLine(latest)));
    if (auto total = RunUsage(); total.ok()) *run_.mutable_usage() = *total;

    if (result->status() != av1::TASK_STATUS_SUCCEEDED) {
      std::string why = absl::StrCat("the agent's turn ended ", StatusWord(result->status()));
      const std::string detail =
          FirstLineOf(result->summary().empty() ? result->stderr_tail() : result->summary(), 1000);
      if (!detail.empty()) absl::StrAppend(&why, ": ", detail);
      it->set_summary(why);
      Log(absl::StrCat("iteration ", i, ": ", why));
      run_.set_iterations(i);
      if (auto s = Save(); !s.ok()) return s;
      return false;
    }
    it->set_summary(Truncated(result->summary(), kSummaryMax));
    return Test(i);
  }

  // The tests of what iteration `i`'s turn left: true when they pass.
  absl::StatusOr<bool> Test(int i) {
    v1::EngineeringIteration* it = run_.mutable_iteration_history(i - 1);
    const std::string of = absl::StrCat(" (iteration ", i, " of ", run_.max_iterations(), ")");
    // What the turn left, before the tests add their own files.
    auto tree = workspace_->StageTree();
    if (!tree.ok()) return tree.status();
    if (*tree == base_tree_) {
      Log(absl::StrCat("iteration ", i, ": the agent changed nothing"));
      run_.set_iterations(i);
      if (auto s = Save(); !s.ok()) return s;
      return false;
    }
    tree_ = *tree;

    SetStatus(v1::ENGINEERING_RUN_STATUS_TESTING);
    Progress(PercentOf(i, true), absl::StrCat("testing", of));
    if (auto s = Save(); !s.ok()) return s;
    auto report = RunTests();
    if (!report.ok()) return report.status();
    *it->mutable_test_report() = *report;
    *run_.mutable_last_test_report() = *report;
    run_.set_iterations(i);
    if (auto s = Save(); !s.ok()) return s;
    return report->outcome() == v1::TEST_OUTCOME_PASSED;
  }

  absl::StatusOr<av1::Usage> RunUsage() {
    UsageScope scope;
    scope.run_id = run_.id();
    auto sum = runs_.SumUsage(scope);
    if (!sum.ok()) return sum.status();
    return sum->usage;
  }

  absl::StatusOr<v1::TestReport> RunTests() {
    const auto& argv = project_.run_contract().test_command();
    TestReportBuilder report(CommandLine({argv.begin(), argv.end()}));
    const absl::Time start = Now();
    auto ran =
        workspace_->Run(Workspace::OnLocalLoopback({argv.begin(), argv.end()}), Workspace::kRepoDir,
                        options_.test_timeout, /*merge_stderr=*/true, /*with_token=*/false, "", 0,
                        [&](const std::string& chunk) { report.Feed(chunk); });
    if (!ran.ok()) return ran.status();
    const auto& r = ran->result;
    const int exit_code = r.signal() != 0 ? 128 + r.signal() : r.exit_code();
    v1::TestReport out = report.Finish(exit_code, r.timed_out(), Now() - start);
    Log(absl::StrCat("tests: ", OutcomeWord(out.outcome()), " ", TestCounts(out), " (",
                     out.command(), ")"));
    return out;
  }

  std::string AuthorName() const {
    return absl::StrCat(AgentName(run_.agent_type()), " for ", run_.owner_id());
  }
  std::string AuthorEmail() const {
    return absl::StrCat(run_.owner_id(), "@agents.orchestrator.invalid");
  }

  // The passing tree as the run's commit, recorded before any push.
  absl::StatusOr<google::protobuf::Struct> Commit() {
    SetStatus(v1::ENGINEERING_RUN_STATUS_PUSHING);
    Progress(90, "pushing");
    const auto& passing = run_.iteration_history(run_.iterations() - 1);
    CommitInputs in;
    in.tree = tree_;
    in.parent = s_.progress.base_commit_sha;
    in.author_name = AuthorName();
    in.author_email = AuthorEmail();
    in.message = CommitMessage(passing.summary(), run_.id(), passing.test_report(), false);
    in.time = absl::FromUnixSeconds(absl::ToUnixSeconds(Now()));
    auto sha = workspace_->Commit(in, RunBranch(run_.id()));
    if (!sha.ok()) return sha.status();
    s_.progress.commit_sha = *sha;
    s_.progress.commit_time = in.time;
    if (auto s = Save(); !s.ok()) return s;
    Log(absl::StrCat("committed ", sha->substr(0, 12), ": ",
                     CommitSubject(passing.summary(), run_.id(), false)));
    return Deliver(/*resumed=*/false);
  }

  bool FastForward() const {
    return project_.change_delivery() != projects::v1::CHANGE_DELIVERY_PULL_REQUEST;
  }

  // Pushes the recorded commit, verified; once re-applied on a default
  // branch that moved meanwhile.
  absl::StatusOr<google::protobuf::Struct> Deliver(bool resumed) {
    SetStatus(v1::ENGINEERING_RUN_STATUS_PUSHING);
    Progress(90, "pushing");
    if (auto s = Save(); !s.ok()) return s;
    const std::string branch = RunBranch(run_.id());
    const std::string& default_branch = s_.progress.default_branch;
    for (bool reapplied = false;; reapplied = true) {
      const std::string sha = s_.progress.commit_sha;
      bool landed = false;
      if (resumed && FastForward()) {
        auto on = git_.Contains(run_.project_id(), project_.repository_url(), default_branch, sha);
        if (!on.ok()) return on.status();
        landed = *on;
        if (landed) Log(absl::StrCat(default_branch, " already has ", sha.substr(0, 12)));
      }
      absl::Status pushed = absl::OkStatus();
      if (!landed) pushed = Push(sha, FastForward() ? default_branch : "");
      if (pushed.ok()) return Succeed(sha, branch);
      if (!absl::IsAborted(pushed) || reapplied) {
        if (absl::IsAborted(pushed)) {
          return Escalate(
              absl::StrCat(default_branch, " moved again while the re-applied change was tested"));
        }
        return pushed;
      }
      Log(absl::StrCat(default_branch,
                       " moved meanwhile: re-applying the change on it and "
                       "testing again"));
      auto parent = workspace_->Reapply(project_.repository_url(), default_branch, sha);
      if (absl::IsFailedPrecondition(parent.status())) {
        return Escalate(std::string(parent.status().message()));
      }
      if (!parent.ok()) return parent.status();
      auto tree = workspace_->StageTree();
      if (!tree.ok()) return tree.status();
      SetStatus(v1::ENGINEERING_RUN_STATUS_TESTING);
      Progress(92, "testing the change re-applied");
      if (auto s = Save(); !s.ok()) return s;
      auto report = RunTests();
      if (!report.ok()) return report.status();
      *run_.mutable_last_test_report() = *report;
      if (run_.iterations() > 0) {
        *run_.mutable_iteration_history(run_.iterations() - 1)->mutable_test_report() = *report;
      }
      if (report->outcome() != v1::TEST_OUTCOME_PASSED) {
        if (auto s = Save(); !s.ok()) return s;
        return Escalate(
            absl::StrCat("the tests fail once the change is re-applied on what was "
                         "pushed to ",
                         default_branch, " meanwhile"));
      }
      const auto& passing = run_.iteration_history(std::max(0, run_.iterations() - 1));
      CommitInputs in;
      in.tree = *tree;
      in.parent = *parent;
      in.author_name = AuthorName();
      in.author_email = AuthorEmail();
      in.message = CommitMessage(passing.summary(), run_.id(), *report, false);
      in.time = absl::FromUnixSeconds(absl::ToUnixSeconds(Now()));
      auto again = workspace_->Commit(in, branch);
      if (!again.ok()) return again.status();
      s_.progress.base_commit_sha = *parent;
      s_.progress.commit_sha = *again;
      s_.progress.commit_time = in.time;
      SetStatus(v1::ENGINEERING_RUN_STATUS_PUSHING);
      if (auto s = Save(); !s.ok()) return s;
      resumed = false;
    }
  }

  // The run's branch (and `default_branch` when set) at `sha` on the remote.
  absl::Status Push(const std::string& sha, const std::string& default_branch) {
    auto bundle = workspace_->Bundle(s_.progress.base_commit_sha, RunBranch(run_.id()));
    if (!bundle.ok()) return bundle.status();
    std::error_code ec;
    fs::create_directories(options_.work_dir, ec);
    const std::string path = (fs::path(options_.work_dir) / (run_.id() + ".bundle")).string();
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out.write(bundle->data(), static_cast<std::streamsize>(bundle->size()));
      if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
    }
    absl::Cleanup remove = [&path] {
      std::error_code ignored;
      fs::remove(path, ignored);
    };
    Landing landing;
    landing.project_id = run_.project_id();
    landing.repository_url = project_.repository_url();
    landing.bundle_path = path;
    landing.base_commit_sha = s_.progress.base_commit_sha;
    landing.commit_sha = sha;
    landing.run_branch = RunBranch(run_.id());
    landing.default_branch = default_branch;
    if (auto s = git_.Land(landing); !s.ok()) return s;
    Log(absl::StrCat("pushed ", sha.substr(0, 12), " to ", landing.run_branch,
                     default_branch.empty() ? "" : absl::StrCat(" and ", default_branch),
                     "; the remote's refs verified"));
    return absl::OkStatus();
  }

  absl::StatusOr<google::protobuf::Struct> Succeed(const std::string& sha,
                                                   const std::string& branch) {
    const auto& passing = run_.iteration_history(std::max(0, run_.iterations() - 1));
    v1::Change change;
    change.set_project_id(run_.project_id());
    change.set_run_id(run_.id());
    change.set_commit_sha(sha);
    change.set_branch(FastForward() ? s_.progress.default_branch : branch);
    change.set_base_commit_sha(s_.progress.base_commit_sha);
    change.set_summary(Truncated(passing.summary(), kSummaryMax));
    // The push has landed: the run succeeds even when its files cannot be
    // listed now (a cancel after the push).
    auto files = workspace_->Diff(s_.progress.base_commit_sha, sha);
    if (files.ok()) {
      for (auto& f : *files) *change.add_files() = std::move(f);
    } else {
      Log(absl::StrCat("the change's files could not be listed: ", files.status().message()));
    }
    *change.mutable_test_report() = run_.last_test_report();
    *change.mutable_create_time() = Stamp(Now());
    if (!FastForward()) {
      auto url = git_.OpenPullRequest(
          project_.repository_url(), branch, s_.progress.default_branch,
          CommitSubject(passing.summary(), run_.id(), false),
          absl::StrCat(passing.summary(), "\n\nTests: ", TestCounts(run_.last_test_report())));
      if (!url.ok()) return url.status();
      change.set_pull_request_url(*url);
      Log(absl::StrCat("opened ", *url));
    }
    *run_.mutable_change() = change;
    run_.set_branch(branch);
    run_.set_status(v1::ENGINEERING_RUN_STATUS_SUCCEEDED);
    run_.clear_worker_id();
    *run_.mutable_end_time() = Stamp(Now());
    if (auto total = RunUsage(); total.ok()) *run_.mutable_usage() = *total;
    if (auto s = Save(); !s.ok()) return s;
    Progress(100, absl::StrCat("done: ", sha.substr(0, 12), " on ", change.branch()));
    google::protobuf::Struct result;
    (*result.mutable_fields())["run_id"].set_string_value(run_.id());
    (*result.mutable_fields())["commit_sha"].set_string_value(sha);
    (*result.mutable_fields())["branch"].set_string_value(change.branch());
    (*result.mutable_fields())["iterations"].set_number_value(run_.iterations());
    if (!change.pull_request_url().empty()) {
      (*result.mutable_fields())["pull_request_url"].set_string_value(change.pull_request_url());
    }
    jobs::SetUsage(run_.usage(), &result);
    return result;
  }

  // The run asks for a human: its last attempt goes to its branch (when it
  // changed anything), and the run and its job fail with "needs a human".
  absl::Status Escalate(const std::string& why) {
    std::string where;
    if (auto tree = workspace_->StageTree(); tree.ok() && *tree != base_tree_) {
      const v1::EngineeringIteration* last =
          run_.iteration_history_size() > 0
              ? &run_.iteration_history(run_.iteration_history_size() - 1)
              : nullptr;
      CommitInputs in;
      in.tree = *tree;
      in.parent = s_.progress.base_commit_sha;
      in.author_name = AuthorName();
      in.author_email = AuthorEmail();
      in.message = CommitMessage(last ? last->summary() : "", run_.id(),
                                 last ? last->test_report() : v1::TestReport(), true);
      // The last turn's end: the same attempt escalated again makes the same
      // commit, so pushing it twice is no change.
      in.time = absl::FromUnixSeconds(last ? absl::ToUnixSeconds(TimeOf(last->agent_end_time()))
                                           : absl::ToUnixSeconds(Now()));
      auto sha = workspace_->Commit(in, RunBranch(run_.id()));
      if (!sha.ok()) return sha.status();
      if (auto s = Push(*sha, ""); !s.ok()) return s;
      run_.set_branch(RunBranch(run_.id()));
      where = absl::StrCat("; branch ", run_.branch(), " holds the last attempt (",
                           sha->substr(0, 7), ")");
    }
    std::string message = absl::StrCat(jobs::kNeedsHumanPrefix, ": ", why, where);
    const std::string& tail = run_.last_test_report().output_tail();
    if (!tail.empty()) {
      const size_t from =
          tail.size() > kEscalationOutputMax ? tail.size() - kEscalationOutputMax : 0;
      size_t start = from;
      while (start < tail.size() && (static_cast<unsigned char>(tail[start]) & 0xC0) == 0x80) {
        ++start;
      }
      absl::StrAppend(&message, ". Last test output:\n", tail.substr(start));
    }
    Log(absl::StrCat("escalated: ", why));
    return Fail(absl::FailedPreconditionError(message));
  }

  StoredRun s_;
  v1::EngineeringRun run_;
  const jobs::JobHooks& hooks_;
  Cancellation& cancel_;
  RunStore& runs_;
  ProjectDirectory& projects_;
  AgentDriverPtr agents_;
  GitRemote& git_;
  const EngineerOptions& options_;
  projects::v1::Project project_;
  std::string worker_id_;
  std::unique_ptr<Workspace> workspace_;
  std::string base_tree_;
  std::string tree_;  // the passing attempt's tree
};

}  // namespace

absl::StatusOr<google::protobuf::Struct> Engineer::Run(const jobs::v1::Job& job,
                                                       const jobs::JobHooks& hooks) {
  auto stored = runs_->GetByJob(job.id());
  if (absl::IsNotFound(stored.status())) {
    // The request's process stopped between the job and its run: the job
    // carries all the run needs.
    auto made = runs_->EnsureForJob(QueuedRunOf(job));
    if (!made.ok()) return made.status();
    stored = runs_->GetByJob(job.id());
  }
  if (!stored.ok()) return stored.status();
  if (IsTerminal(stored->run.status())) {
    if (stored->run.status() != v1::ENGINEERING_RUN_STATUS_SUCCEEDED) {
      return absl::Status(static_cast<absl::StatusCode>(stored->run.error().code()),
                          stored->run.error().message());
    }
    google::protobuf::Struct result;
    (*result.mutable_fields())["run_id"].set_string_value(stored->run.id());
    (*result.mutable_fields())["commit_sha"].set_string_value(stored->run.change().commit_sha());
    (*result.mutable_fields())["branch"].set_string_value(stored->run.change().branch());
    jobs::SetUsage(stored->run.usage(), &result);
    return result;
  }
  // The job's cancellation (or the lease lost, or a shutdown) cuts off
  // whatever the run waits for.
  Cancellation cancel;
  absl::Notification done;
  std::thread watch([&] {
    while (!done.WaitForNotificationWithTimeout(absl::Milliseconds(200))) {
      if (hooks.cancelled && hooks.cancelled()) {
        cancel.Cancel();
        return;
      }
    }
  });
  absl::StatusOr<google::protobuf::Struct> result;
  {
    RunAttempt attempt(*std::move(stored), hooks, cancel, *runs_, *projects_, agents_, *git_,
                       options_);
    result = attempt.Run();
    // An error the job will not retry ends the run too (its row says why).
    if (!result.ok() && !cancel.cancelled() && !jobs::IsTransient(result.status().code())) {
      attempt.EndWith(result.status());
    }
  }
  done.Notify();
  watch.join();
  if (!result.ok() && cancel.cancelled()) return absl::CancelledError("the job was cancelled");
  return result;
}

}  // namespace orchestrator::engineering
