#pragma once

#include <ostream>
#include <string>

namespace orchestrator::agents {

// The built-in scripted agent: a few message patterns, each answered by
// running `orchestrator` CLI commands (with the worker's token, like any
// agent) and replying with what they did. What the one-machine default and
// the tests run when no model key is configured. It prints RunTaskResponse
// JSON lines (events, then the result) on `out`, and keeps each session's
// history under $HOME so that a resumed session remembers. A prompt
// starting "run: " runs the rest as a shell command (its Bash tool, as a
// model would call it) and replies with the exit code and the output.
int RunScriptedAgent(const std::string& prompt, const std::string& session_id, std::ostream& out);

}  // namespace orchestrator::agents
