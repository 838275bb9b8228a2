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

}  // namespace orchestrator::agents
