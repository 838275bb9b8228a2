#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <string>

#include "absl/time/time.h"
#include "services/agents/runner/agent_adapter.h"

namespace orchestrator::agents {

// Runs one task: the adapter's agent process in `cwd` under the task's
// timeout (or `default_timeout`), each normalized event to `emit` (numbered
// from 1 and stamped here), and returns the result: killed at the deadline
// it is TIMEOUT, killed by `*cancel` CANCELLED; on failure it carries the
// agent's stderr tail; a `<result>{json}</result>` block in the final text
// becomes its payload. `after_agent` (if set) runs as soon as the agent's
// process has exited, before the result is made (the runner ends what the
// agent left running there).
v1::TaskResult RunAgentTask(const v1::Task& task, AgentAdapter& adapter, const std::string& cwd,
                            absl::Duration default_timeout, const std::atomic<bool>* cancel,
                            const std::function<void(const v1::AgentEvent&)>& emit,
                            const std::function<void()>& after_agent = nullptr);

// Runs a command task (Task.command) in `workspace`'s working_directory
// under task.timeout: its standard output and error go to `emit` as
// command_output events of at most 64 KiB each, byte for byte; standard
// input is the command's stdin; the environment is this process's, without
// ORCHESTRATOR_TOKEN unless the command asks for it, plus its variables.
// The result carries how it ended (TaskResult.command). `after_exit` as for
// RunAgentTask.
v1::TaskResult RunWorkspaceCommand(const v1::Task& task, const std::string& workspace,
                                   const std::atomic<bool>* cancel,
                                   const std::function<void(const v1::AgentEvent&)>& emit,
                                   const std::function<void()>& after_exit = nullptr);

}  // namespace orchestrator::agents
