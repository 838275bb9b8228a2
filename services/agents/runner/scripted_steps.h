#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "orchestrator/agents/v1/agents.pb.h"

namespace orchestrator::agents {

// The scripted agent's deterministic editing steps, run against a working
// directory as a model's tools would be. Paths are relative to that
// directory: never absolute, never with "..", never resolving (through a
// symbolic link) outside it.

// Creates or overwrites a file (its directories created).
struct WriteStep {
  std::string path;
  std::string content;
};
// Replaces `old_text` with `new_text` in a file; fails unless it occurs
// exactly `count` times (not overlapping).
struct ReplaceStep {
  std::string path;
  std::string old_text;
  std::string new_text;
  int count = 1;
};
// Applies a unified diff (`git apply --recount`, paths relative to the
// working directory after the usual a/ and b/).
struct PatchStep {
  std::string diff;
};
// Deletes a file, a symbolic link (not what it points to), or a directory
// with everything in it; never the working directory itself.
struct DeleteStep {
  std::string path;
};
// Runs a shell command (/bin/sh -c) in the working directory; fails when
// it exits with another status than 0.
struct RunStep {
  std::string command;
};
// Says something: the task's summary (the last one wins).
struct SayStep {
  std::string text;
};
// Model usage the script declares, as a real agent's model would report
// it, so that usage and cost accounting are testable without a model.
struct UsageStep {
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t cache_read_tokens = 0;
  int64_t cache_write_tokens = 0;
  int64_t cost_usd_micros = 0;
};
using ScriptedStep =
    std::variant<WriteStep, ReplaceStep, PatchStep, DeleteStep, RunStep, SayStep, UsageStep>;

using AgentEventSink = std::function<void(const v1::AgentEvent&)>;

// What a shell command run as the Bash tool gave.
struct BashToolRun {
  int exit_code = -1;  // -1 when it could not start or a signal ended it
  std::string output;  // standard output then the end of standard error, at most 64 KiB
};

// Runs `command` with /bin/sh in `cwd` ("" for this process's) as the
// agent's Bash tool: emits its tool_call (`call_id`) and tool_result.
BashToolRun RunBashTool(const std::string& command, const std::string& cwd,
                        const std::string& call_id, const AgentEventSink& emit);

// Runs steps in order against `root`. Each step but say and usage emits a
// tool_call/tool_result pair, named as Claude Code's tools are (Write, Edit,
// ApplyPatch, Delete, Bash); say emits text, usage the usage so far. Not
// thread-safe.
class StepEngine {
 public:
  StepEngine(std::filesystem::path root, AgentEventSink emit);

  // Stops at the first step that fails and says which: "step 2 of 3
  // (replace repo/app.py): …", INVALID_ARGUMENT for a path that is not
  // allowed, FAILED_PRECONDITION for a step the files or the command made
  // fail.
  absl::Status Run(const std::vector<ScriptedStep>& steps);

  // The last say's text ("" when none).
  const std::string& said() const { return said_; }
  // The usage the usage steps declared, summed (turns left at 0).
  const v1::Usage& usage() const { return usage_; }
  // Tool calls made so far (call ids are call_1, call_2, …).
  int tool_calls() const { return calls_; }

 private:
  absl::Status RunOne(const ScriptedStep& step);
  absl::Status Write(const WriteStep& step);
  absl::Status Replace(const ReplaceStep& step);
  absl::Status Patch(const PatchStep& step);
  absl::Status Delete(const DeleteStep& step);
  absl::Status Bash(const RunStep& step);

  // `path` inside the root with every symbolic link resolved (but the last
  // component's, unless `follow_last`), or INVALID_ARGUMENT saying why not.
  absl::StatusOr<std::filesystem::path> Resolve(const std::string& path, bool follow_last) const;

  // Emits the tool_call of a new call and returns its id.
  std::string Call(const std::string& tool, const google::protobuf::Struct& input);
  void Result(const std::string& call_id, const std::string& output, bool is_error);

  std::filesystem::path root_;
  AgentEventSink emit_;
  std::string said_;
  v1::Usage usage_;
  int calls_ = 0;
};

// Describes a step for people and messages: "replace repo/app.py".
std::string DescribeStep(const ScriptedStep& step);

}  // namespace orchestrator::agents
