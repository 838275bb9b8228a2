#include "gtest/gtest.h"
#include "services/agents/domain/worker_spawner.h"

namespace orchestrator::agents {
namespace {

TEST(RuntimeKeyTest, TheSameAgentAndCapabilitiesInAnyOrderGiveTheSameKey) {
  const std::string key = RuntimeKey(v1::AGENT_TYPE_CLAUDE_CODE, {"git", "curl", "node"});
  EXPECT_EQ(key, RuntimeKey(v1::AGENT_TYPE_CLAUDE_CODE, {"node", "git", "curl"}));
  EXPECT_EQ(key, RuntimeKey(v1::AGENT_TYPE_CLAUDE_CODE, {"curl", "git", "node", "git"}));
  EXPECT_NE(key, RuntimeKey(v1::AGENT_TYPE_CODEX, {"git", "curl", "node"}));
  EXPECT_NE(key, RuntimeKey(v1::AGENT_TYPE_CLAUDE_CODE, {"git", "curl"}));
  EXPECT_EQ(key.rfind("rt_", 0), 0u);
  EXPECT_EQ(key.size(), 3u + 16u);
  // Stable across builds and machines (FNV-1a of "agent=N;capabilities=a,b"): pinned.
  EXPECT_EQ(RuntimeKey(v1::AGENT_TYPE_SCRIPTED, {}), "rt_9c429892b0619c7f");
  EXPECT_EQ(RuntimeKey(v1::AGENT_TYPE_CLAUDE_CODE, {"git", "curl"}), "rt_9b42ce25e99c8b46");
}

}  // namespace
}  // namespace orchestrator::agents
