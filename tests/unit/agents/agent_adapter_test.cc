// The adapters turn each agent CLI's own output into the same normalized
// events and result. Inputs are the CLIs' documented line formats.
#include "services/agents/runner/agent_adapter.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace orchestrator::agents {
namespace {

using ::testing::ElementsAre;

struct AgentRun {
  std::vector<v1::AgentEvent> events;
  v1::TaskResult result;
};

AgentRun Feed(AgentAdapter& adapter, const std::vector<std::string>& lines, int exit_code = 0) {
  AgentRun run;
  for (const auto& line : lines) {
    std::vector<v1::AgentEvent> events;
    adapter.OnLine(line, &events, &run.result);
    run.events.insert(run.events.end(), events.begin(), events.end());
  }
  adapter.Finish(exit_code, &run.result);
  return run;
}

std::vector<v1::AgentEvent::PayloadCase> Kinds(const AgentRun& run) {
  std::vector<v1::AgentEvent::PayloadCase> out;
  for (const auto& e : run.events) out.push_back(e.payload_case());
  return out;
}

TEST(AgentAdapterTest, ClaudeCodeStreamJsonBecomesEventsAndAResult) {
  auto adapter = MakeAdapter(v1::AGENT_TYPE_CLAUDE_CODE, {});
  const auto command = adapter->Command({"create the project", "sess-1"});
  EXPECT_THAT(command, ::testing::IsSupersetOf({std::string("claude"), std::string("-p"),
                                                std::string("stream-json"), std::string("--resume"),
                                                std::string("sess-1")}));
  AgentRun run = Feed(
      *adapter,
      {R"({"type":"system","subtype":"init","session_id":"sess-1","model":"claude-sonnet-4-5","tools":["Bash"]})",
       R"({"type":"assistant","message":{"id":"msg_1","role":"assistant","content":[{"type":"text","text":"Creating it."},{"type":"tool_use","id":"toolu_1","name":"Bash","input":{"command":"orchestrator project create shop"}}]},"session_id":"sess-1"})",
       R"({"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"id: prj_1","is_error":false}]},"session_id":"sess-1"})",
       "not json at all",
       R"({"type":"result","subtype":"success","is_error":false,"num_turns":2,"result":"Done: prj_1 <result>{\"project_id\":\"prj_1\"}</result>","session_id":"sess-1","total_cost_usd":0.0123,"usage":{"input_tokens":100,"output_tokens":20,"cache_read_input_tokens":5,"cache_creation_input_tokens":7}})"});
  EXPECT_THAT(Kinds(run), ElementsAre(v1::AgentEvent::kSessionStarted, v1::AgentEvent::kText,
                                      v1::AgentEvent::kToolCall, v1::AgentEvent::kToolResult,
                                      v1::AgentEvent::kUsage));
  EXPECT_TRUE(run.events[0].session_started().resumed());
  EXPECT_EQ(run.events[2].tool_call().tool_name(), "Bash");
  EXPECT_EQ(run.events[2].tool_call().input().fields().at("command").string_value(),
            "orchestrator project create shop");
  EXPECT_EQ(run.events[3].tool_result().call_id(), "toolu_1");
  EXPECT_EQ(run.result.status(), v1::TASK_STATUS_SUCCEEDED);
  EXPECT_EQ(run.result.agent_session_id(), "sess-1");
  EXPECT_EQ(run.result.usage().cost_usd_micros(), 12300);
  EXPECT_EQ(run.result.usage().cache_write_tokens(), 7);
  google::protobuf::Struct payload;
  ASSERT_TRUE(ExtractResultBlock(run.result.summary(), &payload));
  EXPECT_EQ(payload.fields().at("project_id").string_value(), "prj_1");
}

TEST(AgentAdapterTest, AClaudeErrorResultFailsTheTask) {
  auto adapter = MakeAdapter(v1::AGENT_TYPE_CLAUDE_CODE, {});
  AgentRun run = Feed(
      *adapter,
      {R"({"type":"result","subtype":"error_max_turns","is_error":true,"session_id":"s"})"}, 1);
  EXPECT_EQ(run.result.status(), v1::TASK_STATUS_FAILED);
  EXPECT_EQ(run.result.summary(), "error_max_turns");
}

TEST(AgentAdapterTest, CodexJsonEventsBecomeTheSameEvents) {
  auto adapter = MakeAdapter(v1::AGENT_TYPE_CODEX, {});
  EXPECT_THAT(adapter->Command({"fix it", "th_1"}),
              ::testing::IsSupersetOf({std::string("exec"), std::string("--json"),
                                       std::string("resume"), std::string("th_1")}));
  AgentRun run = Feed(
      *adapter,
      {R"({"type":"thread.started","thread_id":"th_1"})", R"({"type":"turn.started"})",
       R"({"type":"item.started","item":{"id":"item_0","type":"command_execution","command":"bash -lc 'orchestrator project list'","status":"in_progress"}})",
       R"({"type":"item.completed","item":{"id":"item_0","type":"command_execution","command":"bash -lc 'orchestrator project list'","aggregated_output":"no projects\n","exit_code":0,"status":"completed"}})",
       R"({"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"You have no projects."}})",
       R"({"type":"turn.completed","usage":{"input_tokens":50,"cached_input_tokens":10,"output_tokens":9}})"});
  EXPECT_THAT(Kinds(run), ElementsAre(v1::AgentEvent::kSessionStarted, v1::AgentEvent::kToolCall,
                                      v1::AgentEvent::kToolResult, v1::AgentEvent::kText,
                                      v1::AgentEvent::kUsage));
  EXPECT_EQ(run.result.status(), v1::TASK_STATUS_SUCCEEDED);
  EXPECT_EQ(run.result.summary(), "You have no projects.");
  EXPECT_EQ(run.result.agent_session_id(), "th_1");
  EXPECT_EQ(run.result.usage().cache_read_tokens(), 10);
}

TEST(AgentAdapterTest, AnAgentThatExitsBadlyWithoutSayingSoFails) {
  auto adapter = MakeAdapter(v1::AGENT_TYPE_CODEX, {});
  AgentRun run = Feed(*adapter, {}, 3);
  EXPECT_EQ(run.result.status(), v1::TASK_STATUS_FAILED);
  EXPECT_EQ(run.result.summary(), "the agent exited with status 3");
}

TEST(AgentAdapterTest, DroidsOneResultObjectBecomesTheResult) {
  auto adapter = MakeAdapter(v1::AGENT_TYPE_FACTORY_DROID, {});
  EXPECT_THAT(
      adapter->Command({"fix it", "sess-9"}),
      ::testing::IsSupersetOf({std::string("droid"), std::string("exec"), std::string("-o"),
                               std::string("json"), std::string("-s"), std::string("sess-9")}));
  AgentRun run = Feed(
      *adapter,
      {R"({"type":"result","subtype":"success","is_error":false,"duration_ms":5400,"num_turns":3,"result":"Fixed the failing test.","session_id":"sess-9"})"});
  EXPECT_THAT(Kinds(run), ElementsAre(v1::AgentEvent::kText));
  EXPECT_EQ(run.result.status(), v1::TASK_STATUS_SUCCEEDED);
  EXPECT_EQ(run.result.summary(), "Fixed the failing test.");
  EXPECT_EQ(run.result.agent_session_id(), "sess-9");
  EXPECT_EQ(run.result.usage().turns(), 3);
}

TEST(AgentAdapterTest, TheScriptedAgentSpeaksTheRunnersOwnLines) {
  auto adapter = MakeAdapter(v1::AGENT_TYPE_SCRIPTED, {"/opt/runner", "scripted-agent"});
  EXPECT_THAT(
      adapter->Command({"hello", "s-1"}),
      ElementsAre("/opt/runner", "scripted-agent", "--prompt", "hello", "--session", "s-1"));
  AgentRun run = Feed(
      *adapter,
      {R"({"event":{"sessionStarted":{"agentSessionId":"s-1","model":"scripted","resumed":true}}})",
       R"({"event":{"text":{"text":"Hi."}}})",
       R"({"result":{"status":"TASK_STATUS_SUCCEEDED","summary":"Hi.","agentSessionId":"s-1"}})"});
  EXPECT_THAT(Kinds(run), ElementsAre(v1::AgentEvent::kSessionStarted, v1::AgentEvent::kText));
  EXPECT_EQ(run.result.summary(), "Hi.");
  EXPECT_EQ(run.result.agent_session_id(), "s-1");
}

}  // namespace
}  // namespace orchestrator::agents
