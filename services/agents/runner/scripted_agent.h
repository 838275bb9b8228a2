#pragma once

#include <cstddef>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/agents/runner/scripted_steps.h"

namespace orchestrator::agents {

// The built-in scripted agent: a few message patterns, each answered by
// running `orchestrator` CLI commands (with the worker's token, like any
// agent) and replying with what they did. What the one-machine default and
// the tests run when no model key is configured. It prints RunTaskResponse
// JSON lines (events, then the result) on `out`, and keeps each session's
// history under $HOME so that a resumed session remembers. A prompt
// starting "run: " runs the rest as a shell command (its Bash tool, as a
// model would call it) and replies with the exit code and the output.
//
// A prompt with an orchestrator-steps block engineers deterministically:
//
//   ```orchestrator-steps
//   {"steps": [STEP, …]}            the same steps on every turn, or
//   {"attempts": [[STEP, …], …]}    turn k of the session runs list k, the
//                                   last list again once they run out
//   ```
//
// where a STEP is one of (see scripted_steps.h)
//   {"write": PATH, "content": TEXT}
//   {"replace": PATH, "old": TEXT, "new": TEXT, "count": N}   count: 1 if absent
//   {"patch": UNIFIED_DIFF}
//   {"delete": PATH}
//   {"run": SHELL_COMMAND}
//   {"say": TEXT}                   the task's summary (the last one)
//   {"usage": {"input_tokens": N, "output_tokens": N, "cost_usd_micros": N,
//              "cache_read_tokens": N, "cache_write_tokens": N}}   each optional
// with paths relative to the working directory. The session remembers the
// block: a later turn whose prompt has none (a follow-up such as "the tests
// failed") runs it again at its own attempt. Turn k is 1 + the turns the
// session's log already holds. A malformed block or a failed step fails the
// task, saying which step and why.
int RunScriptedAgent(const std::string& prompt, const std::string& session_id, std::ostream& out);

// Where the scripted agent works and keeps its sessions.
struct ScriptedAgentPaths {
  std::string working_directory;  // steps' paths and commands: the task's directory
  std::string state_directory;    // <id>.log (the turns) and <id>.steps (the block)
};
int RunScriptedAgent(const std::string& prompt, const std::string& session_id,
                     const ScriptedAgentPaths& paths, std::ostream& out);

// The steps of an orchestrator-steps block, one list per attempt.
struct StepScript {
  std::vector<std::vector<ScriptedStep>> attempts;
  // The list for attempt `attempt` (1, 2, …): the last one past the end.
  const std::vector<ScriptedStep>& ForAttempt(int attempt) const;
};

inline constexpr size_t kMaxStepScriptBytes = 256 * 1024;
inline constexpr size_t kMaxScriptedSteps = 200;  // in all the attempts together

// The text between a prompt's "```orchestrator-steps" line and the next
// "```" line; nullopt when there is no such block. INVALID_ARGUMENT when it
// is not closed, is larger than kMaxStepScriptBytes, or there are two.
absl::StatusOr<std::optional<std::string>> StepsBlockOf(const std::string& prompt);

// A block's JSON as steps. INVALID_ARGUMENT saying where it is wrong
// ("attempts[1][0]: unknown field \"contnet\"").
absl::StatusOr<StepScript> ParseStepScript(const std::string& json);

}  // namespace orchestrator::agents
