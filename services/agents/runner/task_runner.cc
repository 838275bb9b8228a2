#include "services/agents/runner/task_runner.h"

#include <google/protobuf/util/time_util.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/auth/origin_claim.h"
#include "services/common/process/child_process.h"

extern char** environ;

namespace orchestrator::agents {
namespace {

google::protobuf::Timestamp Now() {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(absl::Now()));
}

std::string Describe(absl::Duration d) { return absl::FormatDuration(d); }

// What one command_output event carries at most: the contract's bound, so
// the runner's clipping to the bounds never cuts output.
constexpr size_t kOutputChunk = 64 * 1024;

absl::Duration ToDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

google::protobuf::Duration FromDuration(absl::Duration d) {
  return google::protobuf::util::TimeUtil::MicrosecondsToDuration(absl::ToInt64Microseconds(d));
}

}  // namespace

v1::TaskResult RunAgentTask(const v1::Task& task, AgentAdapter& adapter, const std::string& cwd,
                            absl::Duration default_timeout, const std::atomic<bool>* cancel,
                            const std::function<void(const v1::AgentEvent&)>& emit,
                            const std::function<void()>& after_agent) {
  v1::TaskResult result;
  result.set_task_id(task.id());
  *result.mutable_start_time() = Now();
  const absl::Duration timeout =
      task.has_timeout() ? absl::Seconds(task.timeout().seconds()) : default_timeout;
  int64_t sequence = 0;
  std::vector<v1::AgentEvent> events;
  auto on_line = [&](const std::string& line) {
    events.clear();
    adapter.OnLine(line, &events, &result);
    for (auto& e : events) {
      e.set_task_id(task.id());
      e.set_sequence(++sequence);
      *e.mutable_create_time() = Now();
      emit(e);
    }
  };
  adapter.Prepare();
  TaskInput input{task.prompt(), task.agent_session_id()};
  std::map<std::string, std::string> env = adapter.Environment();
  // The agent's `orchestrator` calls derive their request ids from it: a
  // task run again for the same work repeats none of them.
  if (!task.idempotency_key().empty()) env["ORCHESTRATOR_IDEMPOTENCY_KEY"] = task.idempotency_key();
  // And name what started the task: the jobs they start record it.
  if (!task.origin().empty()) env[kOriginEnvironment] = task.origin();
  auto exit = RunChild(adapter.Command(input), env, cwd, on_line, absl::Now() + timeout, cancel,
                       8192, after_agent);
  *result.mutable_end_time() = Now();
  if (!exit.ok()) {
    result.set_status(v1::TASK_STATUS_FAILED);
    result.set_summary(absl::StrCat("could not start the agent: ", exit.status().message()));
    return result;
  }
  if (exit->cancelled) {
    result.set_status(v1::TASK_STATUS_CANCELLED);
    result.set_summary("cancelled");
  } else if (exit->timed_out) {
    result.set_status(v1::TASK_STATUS_TIMEOUT);
    result.set_summary(
        absl::StrCat("the task ran past its timeout of ", Describe(timeout), " and was killed"));
  } else if (exit->signal != 0) {
    result.set_status(v1::TASK_STATUS_FAILED);
    result.set_summary(absl::StrCat("the agent was killed by signal ", exit->signal));
  } else {
    adapter.Finish(exit->exit_code, &result);
  }
  if (result.status() != v1::TASK_STATUS_SUCCEEDED) result.set_stderr_tail(exit->stderr_tail);
  if (!result.has_payload()) ExtractResultBlock(result.summary(), result.mutable_payload());
  if (result.has_payload() && result.payload().fields().empty()) result.clear_payload();
  return result;
}

v1::TaskResult RunWorkspaceCommand(const v1::Task& task, const std::string& workspace,
                                   const std::atomic<bool>* cancel,
                                   const std::function<void(const v1::AgentEvent&)>& emit,
                                   const std::function<void()>& after_exit) {
  const v1::WorkspaceCommand& command = task.command();
  v1::TaskResult result;
  result.set_task_id(task.id());
  *result.mutable_start_time() = Now();
  const absl::Time started = absl::Now();
  v1::CommandResult* ended = result.mutable_command();
  auto finish = [&](v1::TaskStatus status, std::string summary) {
    *result.mutable_end_time() = Now();
    *ended->mutable_duration() = FromDuration(absl::Now() - started);
    result.set_status(status);
    result.set_summary(std::move(summary));
    return result;
  };
  // The spawner checked it; the sandbox's own files are what it may reach.
  const std::string& dir = command.working_directory();
  bool escapes = absl::StartsWith(dir, "/");
  for (absl::string_view part : absl::StrSplit(dir, '/')) escapes = escapes || part == "..";
  const std::string cwd = dir.empty() ? workspace : absl::StrCat(workspace, "/", dir);
  std::error_code ec;
  if (escapes || !std::filesystem::is_directory(cwd, ec)) {
    ended->set_exit_code(126);
    ended->set_stderr_tail(
        absl::StrCat("working_directory '", dir, "' is not a directory in ", "/workspace\n"));
    return finish(v1::TASK_STATUS_FAILED, "the working directory does not exist");
  }

  ChildCommand child;
  child.argv.assign(command.argv().begin(), command.argv().end());
  child.inherit_environment = false;
  for (char** e = environ; *e != nullptr; ++e) {
    const absl::string_view kv = *e;
    const size_t eq = kv.find('=');
    if (eq != absl::string_view::npos)
      child.env[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
  }
  if (!command.with_worker_token()) child.env.erase("ORCHESTRATOR_TOKEN");
  for (const auto& [k, v] : command.environment()) child.env[k] = v;
  child.cwd = cwd;
  child.stdin_bytes = command.stdin();
  child.stderr_to_stdout = command.merge_stderr();
  int64_t sequence = 0;
  auto output = [&](absl::string_view bytes, bool to_stderr) {
    for (size_t at = 0; at < bytes.size(); at += kOutputChunk) {
      v1::AgentEvent e;
      e.set_task_id(task.id());
      e.set_sequence(++sequence);
      *e.mutable_create_time() = Now();
      e.mutable_command_output()->set_data(std::string(bytes.substr(at, kOutputChunk)));
      e.mutable_command_output()->set_stderr(to_stderr);
      emit(e);
    }
  };
  child.on_output = [&](absl::string_view bytes) { output(bytes, false); };
  child.on_stderr = [&](absl::string_view bytes) { output(bytes, true); };
  const absl::Duration timeout = ToDuration(task.timeout());
  child.deadline = absl::Now() + timeout;
  child.cancel = cancel;
  child.stderr_bytes = 8192;
  child.after_exit = after_exit;
  auto exit = RunChild(child);
  if (!exit.ok()) {
    result.clear_command();
    return finish(v1::TASK_STATUS_FAILED,
                  absl::StrCat("could not start the command: ", exit.status().message()));
  }
  ended->set_exit_code(exit->signal != 0 ? 0 : exit->exit_code);
  ended->set_signal(exit->signal);
  ended->set_timed_out(exit->timed_out);
  ended->set_cancelled(exit->cancelled);
  ended->set_stderr_tail(exit->stderr_tail);
  if (exit->cancelled) return finish(v1::TASK_STATUS_CANCELLED, "cancelled");
  if (exit->timed_out) {
    return finish(v1::TASK_STATUS_TIMEOUT, absl::StrCat("the command ran past its timeout of ",
                                                        Describe(timeout), " and was killed"));
  }
  if (exit->signal != 0) {
    return finish(v1::TASK_STATUS_FAILED,
                  absl::StrCat("the command was killed by signal ", exit->signal));
  }
  if (exit->exit_code != 0) {
    return finish(v1::TASK_STATUS_FAILED, absl::StrCat("the command exited ", exit->exit_code));
  }
  return finish(v1::TASK_STATUS_SUCCEEDED, "");
}

}  // namespace orchestrator::agents
