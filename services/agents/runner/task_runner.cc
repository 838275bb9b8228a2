#include "services/agents/runner/task_runner.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "services/common/process/child_process.h"

namespace orchestrator::agents {
namespace {

google::protobuf::Timestamp Now() {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(absl::Now()));
}

std::string Describe(absl::Duration d) { return absl::FormatDuration(d); }

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

}  // namespace orchestrator::agents
