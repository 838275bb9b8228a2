#pragma once

#include <optional>

#include "absl/strings/string_view.h"
#include "orchestrator/agents/v1/agents.pb.h"

namespace orchestrator {

// The agent a flag names (--session_agent, --engineering_agent): scripted,
// claude-code, codex or factory-droid.
inline std::optional<agents::v1::AgentType> AgentTypeNamed(absl::string_view name) {
  if (name == "scripted") return agents::v1::AGENT_TYPE_SCRIPTED;
  if (name == "claude-code") return agents::v1::AGENT_TYPE_CLAUDE_CODE;
  if (name == "codex") return agents::v1::AGENT_TYPE_CODEX;
  if (name == "factory-droid") return agents::v1::AGENT_TYPE_FACTORY_DROID;
  return std::nullopt;
}

}  // namespace orchestrator
