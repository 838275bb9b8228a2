#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "orchestrator/agents/v1/agents.pb.h"

namespace orchestrator::agents {

// One task as an adapter sees it.
struct TaskInput {
  std::string prompt;
  std::string agent_session_id;  // resume this one; empty starts a new session
};

// What an agent CLI is to the runner: how to start it for a task, and how to
// turn each line it prints into normalized events and, at the end, a result.
// One adapter object serves one task.
class AgentAdapter {
 public:
  virtual ~AgentAdapter() = default;

  virtual std::vector<std::string> Command(const TaskInput& task) = 0;
  // Extra environment for the agent process.
  virtual std::map<std::string, std::string> Environment() const { return {}; }
  // Before the agent runs: what its HOME needs (e.g. its CLI's config).
  virtual void Prepare() {}
  // One line of the agent's standard output: events to emit (without
  // task id, sequence and time, which the runner sets), and what it says of
  // the result (summary, session id, usage, failure).
  virtual void OnLine(const std::string& line, std::vector<v1::AgentEvent>* events,
                      v1::TaskResult* result) = 0;
  // After the process exits with `exit_code`: settle the result's status
  // if the output did not.
  virtual void Finish(int exit_code, v1::TaskResult* result);
};

// The adapter of an agent type; `scripted_command` runs the built-in
// scripted agent (the runner binary itself, in its agent mode).
std::unique_ptr<AgentAdapter> MakeAdapter(v1::AgentType type,
                                          const std::vector<std::string>& scripted_command);

// A `<result>{…json…}</result>` block in the agent's final text, parsed
// into `payload`; true when there was one.
bool ExtractResultBlock(const std::string& text, google::protobuf::Struct* payload);

}  // namespace orchestrator::agents
