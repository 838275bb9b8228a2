#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace orchestrator::agents {

// What one `orchestrator` CLI call gave.
struct CliOutput {
  int exit_code = -1;
  std::string out, err;
};
using RunCli = std::function<CliOutput(const std::vector<std::string>& args)>;

// The string at a dotted path ("job.result.url") of a CLI call's --json
// output; "" when it is not there.
std::string JsonPath(const std::string& json, const std::string& path);

// The chain the scripted PO agent runs without a model, one step per turn:
//   "build a python service called NAME that answers TEXT" (or node)
//     → project create, scaffold run (python-http / node-http);
//   the platform's "job … succeeded" turn for that job → engineering trigger
//     (a scripted developer agent whose steps make the greeting TEXT);
//   … for the engineering job → deploy trigger;
//   … for the deploy job → "NAME is live at URL".
//   "change the text to TEXT" (once live) → engineering, then deploy again.
// A failed step ends the chain, saying why. Its state is kept in
// `state_file` (JSON), so the next turn, in a new process, goes on.
// nullopt when `prompt` is none of this chain's (another branch answers).
std::optional<std::string> RunChainTurn(const std::string& prompt, const std::string& state_file,
                                        const RunCli& cli);

}  // namespace orchestrator::agents
