// The scripted agent's orchestrator-steps blocks: deterministic edits in its
// working directory, reported as a model's tool calls would be.
#include "services/agents/runner/scripted_agent.h"

#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace orchestrator::agents {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct AgentTurn {
  int exit_code = -1;
  std::vector<v1::AgentEvent> events;
  v1::TaskResult result;
};

std::vector<v1::AgentEvent::PayloadCase> Kinds(const AgentTurn& turn) {
  std::vector<v1::AgentEvent::PayloadCase> out;
  for (const auto& e : turn.events) out.push_back(e.payload_case());
  return out;
}

std::vector<std::string> ToolNames(const AgentTurn& turn) {
  std::vector<std::string> out;
  for (const auto& e : turn.events) {
    if (e.has_tool_call()) out.push_back(e.tool_call().tool_name());
  }
  return out;
}

std::string Block(const std::string& json) {
  return absl::StrCat("Change the greeting.\n\n```orchestrator-steps\n", json, "\n```\n");
}

// A working directory (the worker's /workspace) with the repository at
// repo/, a directory outside it, and the agent's session state.
class ScriptedAgentTest : public testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            absl::StrCat("scripted-agent-", ::getpid(), "-",
                         testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(work() / "repo");
    fs::create_directories(outside());
    Write("repo/app.py", "GREETING = \"Hello\"\nprint(GREETING)\n");
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path work() const { return root_ / "workspace"; }
  fs::path outside() const { return root_ / "outside"; }

  void Write(const std::string& path, const std::string& text) {
    fs::create_directories((work() / path).parent_path());
    std::ofstream(work() / path, std::ios::binary) << text;
  }
  std::string Read(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  std::string ReadWork(const std::string& path) { return Read(work() / path); }

  AgentTurn Run(const std::string& prompt, const std::string& session = "") {
    std::ostringstream out;
    AgentTurn turn;
    turn.exit_code = RunScriptedAgent(
        prompt, session,
        {.working_directory = work().string(), .state_directory = (root_ / "state").string()}, out);
    std::istringstream lines(out.str());
    std::string line;
    while (std::getline(lines, line)) {
      v1::RunTaskResponse r;
      EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(line, &r).ok()) << line;
      if (r.has_event()) turn.events.push_back(r.event());
      if (r.has_result()) turn.result = r.result();
    }
    return turn;
  }

  // Runs a block expected to fail, and returns why.
  std::string Failure(const std::string& json) {
    AgentTurn turn = Run(Block(json));
    EXPECT_EQ(turn.result.status(), v1::TASK_STATUS_FAILED) << json;
    EXPECT_EQ(turn.exit_code, 1);
    return turn.result.summary();
  }

  fs::path root_;
};

TEST_F(ScriptedAgentTest, WriteCreatesAFileAndItsDirectories) {
  AgentTurn turn = Run(Block(R"({"steps":[{"write":"repo/pkg/new.py","content":"X = 1\n"}]})"));
  EXPECT_EQ(turn.exit_code, 0);
  EXPECT_EQ(ReadWork("repo/pkg/new.py"), "X = 1\n");
  EXPECT_THAT(Kinds(turn), ElementsAre(v1::AgentEvent::kSessionStarted, v1::AgentEvent::kToolCall,
                                       v1::AgentEvent::kToolResult, v1::AgentEvent::kText));
  const auto& call = turn.events[1].tool_call();
  EXPECT_EQ(call.tool_name(), "Write");
  EXPECT_EQ(call.input().fields().at("file_path").string_value(), "repo/pkg/new.py");
  EXPECT_EQ(call.input().fields().at("content").string_value(), "X = 1\n");
  EXPECT_EQ(turn.events[2].tool_result().call_id(), call.call_id());
  EXPECT_FALSE(turn.events[2].tool_result().is_error());
  EXPECT_EQ(turn.result.status(), v1::TASK_STATUS_SUCCEEDED);
  EXPECT_EQ(turn.result.summary(), "Ran 1 scripted step (attempt 1).");
  EXPECT_EQ(turn.result.usage().turns(), 2);

  // Overwrites.
  Run(Block(R"({"steps":[{"write":"repo/app.py","content":""}]})"));
  EXPECT_EQ(ReadWork("repo/app.py"), "");
}

TEST_F(ScriptedAgentTest, ReplaceNeedsExactlyTheCountOfOccurrences) {
  AgentTurn turn =
      Run(Block(R"({"steps":[{"replace":"repo/app.py","old":"Hello","new":"Howdy"}]})"));
  EXPECT_EQ(turn.result.status(), v1::TASK_STATUS_SUCCEEDED) << turn.result.summary();
  EXPECT_EQ(ReadWork("repo/app.py"), "GREETING = \"Howdy\"\nprint(GREETING)\n");
  EXPECT_THAT(ToolNames(turn), ElementsAre("Edit"));
  EXPECT_EQ(turn.events[1].tool_call().input().fields().at("old_string").string_value(), "Hello");

  turn =
      Run(Block(R"({"steps":[{"replace":"repo/app.py","old":"GREETING","new":"G","count":2}]})"));
  EXPECT_EQ(turn.result.status(), v1::TASK_STATUS_SUCCEEDED) << turn.result.summary();
  EXPECT_EQ(ReadWork("repo/app.py"), "G = \"Howdy\"\nprint(G)\n");

  // Twice where once was said, or not at all: the file stays as it was.
  Write("repo/app.py", "a a\n");
  EXPECT_EQ(Failure(R"({"steps":[{"replace":"repo/app.py","old":"a","new":"b"}]})"),
            "step 1 of 1 (replace repo/app.py): the old text occurs 2 times, not 1");
  EXPECT_EQ(Failure(R"({"steps":[{"replace":"repo/app.py","old":"z","new":"b"}]})"),
            "step 1 of 1 (replace repo/app.py): the old text occurs 0 times, not 1");
  EXPECT_THAT(Failure(R"({"steps":[{"replace":"repo/none.py","old":"z","new":"b"}]})"),
              HasSubstr("no such file"));
  EXPECT_EQ(ReadWork("repo/app.py"), "a a\n");
}

TEST_F(ScriptedAgentTest, PatchAppliesAUnifiedDiff) {
  // Hunk counts that are off, as a model writes them: --recount fixes them.
  const std::string diff =
      "diff --git a/repo/app.py b/repo/app.py\n--- a/repo/app.py\n+++ b/repo/app.py\n"
      "@@ -1,9 +1,9 @@\n-GREETING = \"Hello\"\n+GREETING = \"Howdy\"\n print(GREETING)\n"
      "diff --git a/repo/NEW.md b/repo/NEW.md\nnew file mode 100644\n--- /dev/null\n"
      "+++ b/repo/NEW.md\n@@ -0,0 +1 @@\n+new\n";
  google::protobuf::Value patch;
  patch.set_string_value(diff);
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(patch, &json);
  AgentTurn turn = Run(Block(absl::StrCat(R"({"steps":[{"patch":)", json, "}]}")));
  EXPECT_EQ(turn.result.status(), v1::TASK_STATUS_SUCCEEDED) << turn.result.summary();
  EXPECT_EQ(ReadWork("repo/app.py"), "GREETING = \"Howdy\"\nprint(GREETING)\n");
  EXPECT_EQ(ReadWork("repo/NEW.md"), "new\n");
  EXPECT_THAT(ToolNames(turn), ElementsAre("ApplyPatch"));

  // The same diff again no longer applies.
  const std::string why = Failure(absl::StrCat(R"({"steps":[{"patch":)", json, "}]}"));
  EXPECT_THAT(why, HasSubstr("step 1 of 1 (patch): the patch does not apply"));
}

TEST_F(ScriptedAgentTest, DeleteRemovesFilesAndDirectories) {
  Write("repo/old/a.txt", "a");
  Write("repo/b.txt", "b");
  AgentTurn turn = Run(Block(R"({"steps":[{"delete":"repo/old"},{"delete":"repo/b.txt"}]})"));
  EXPECT_EQ(turn.result.status(), v1::TASK_STATUS_SUCCEEDED) << turn.result.summary();
  EXPECT_FALSE(fs::exists(work() / "repo/old"));
  EXPECT_FALSE(fs::exists(work() / "repo/b.txt"));
  EXPECT_THAT(ToolNames(turn), ElementsAre("Delete", "Delete"));
  EXPECT_EQ(Failure(R"({"steps":[{"delete":"repo/b.txt"}]})"),
            "step 1 of 1 (delete repo/b.txt): no such file or directory");
  EXPECT_THAT(Failure(R"({"steps":[{"delete":"."}]})"), HasSubstr("the working directory itself"));
  EXPECT_TRUE(fs::exists(work() / "repo/app.py"));
}

TEST_F(ScriptedAgentTest, RunRunsInTheWorkingDirectoryAndAFailureStopsTheSteps) {
  AgentTurn turn = Run(Block(R"({"steps":[{"run":"cd repo && ls > ../listing.txt"}]})"));
  EXPECT_EQ(turn.result.status(), v1::TASK_STATUS_SUCCEEDED) << turn.result.summary();
  EXPECT_EQ(ReadWork("listing.txt"), "app.py\n");
  EXPECT_THAT(ToolNames(turn), ElementsAre("Bash"));
  EXPECT_EQ(turn.events[1].tool_call().input().fields().at("command").string_value(),
            "cd repo && ls > ../listing.txt");

  turn = Run(Block(
      R"({"steps":[{"say":"trying"},{"run":"echo oops; exit 3"},{"write":"after.txt","content":"x"}]})"));
  EXPECT_EQ(turn.result.status(), v1::TASK_STATUS_FAILED);
  EXPECT_EQ(turn.result.summary(),
            "step 2 of 3 (run \"echo oops; exit 3\"): it exited with status 3: oops");
  EXPECT_FALSE(fs::exists(work() / "after.txt"));
  const v1::AgentEvent& result = turn.events[3];
  ASSERT_TRUE(result.has_tool_result());
  EXPECT_TRUE(result.tool_result().is_error());
  EXPECT_EQ(result.tool_result().output(), "oops\n");
  // The failure is said last, for the transcript.
  EXPECT_EQ(turn.events.back().text().text(), turn.result.summary());
}

TEST_F(ScriptedAgentTest, TheLastSayIsTheSummary) {
  AgentTurn turn = Run(Block(
      R"({"steps":[{"say":"Looking."},{"replace":"repo/app.py","old":"Hello","new":"Hi"},{"say":"Greeting changed to Hi.\n\nOne line."}]})"));
  EXPECT_EQ(turn.result.summary(), "Greeting changed to Hi.\n\nOne line.");
  EXPECT_THAT(Kinds(turn), ElementsAre(v1::AgentEvent::kSessionStarted, v1::AgentEvent::kText,
                                       v1::AgentEvent::kToolCall, v1::AgentEvent::kToolResult,
                                       v1::AgentEvent::kText));
  EXPECT_EQ(turn.events[1].text().text(), "Looking.");
}

TEST_F(ScriptedAgentTest, DeclaredUsageIsReportedAsAModelsWouldBe) {
  AgentTurn turn = Run(Block(
      R"({"steps":[{"usage":{"input_tokens":1000,"output_tokens":200,"cost_usd_micros":12300}},)"
      R"({"write":"repo/a","content":"a"},{"usage":{"input_tokens":500,"output_tokens":50,"cache_read_tokens":7}}]})"));
  EXPECT_EQ(turn.result.status(), v1::TASK_STATUS_SUCCEEDED) << turn.result.summary();
  const v1::Usage& usage = turn.result.usage();
  EXPECT_EQ(usage.input_tokens(), 1500);
  EXPECT_EQ(usage.output_tokens(), 250);
  EXPECT_EQ(usage.cache_read_tokens(), 7);
  EXPECT_EQ(usage.cost_usd_micros(), 12300);
  EXPECT_EQ(usage.turns(), 2);
  // Usage events are cumulative, as the adapters' are.
  std::vector<int64_t> inputs;
  for (const auto& e : turn.events) {
    if (e.has_usage()) inputs.push_back(e.usage().input_tokens());
  }
  EXPECT_THAT(inputs, ElementsAre(1000, 1500));

  // A failed turn still reports what it used.
  turn = Run(Block(
      R"({"steps":[{"usage":{"input_tokens":10,"output_tokens":1}},{"delete":"repo/missing"}]})"));
  EXPECT_EQ(turn.result.status(), v1::TASK_STATUS_FAILED);
  EXPECT_EQ(turn.result.usage().input_tokens(), 10);
}

TEST_F(ScriptedAgentTest, AttemptsFollowTheSessionsTurnsAndTheLastRepeats) {
  const std::string block =
      Block(R"({"attempts":[[{"write":"repo/try.txt","content":"1"},{"say":"first"}],)"
            R"([{"write":"repo/try.txt","content":"2"},{"say":"second"}]]})");
  AgentTurn turn = Run(block, "sess-1");
  EXPECT_EQ(turn.result.summary(), "first");
  EXPECT_EQ(ReadWork("repo/try.txt"), "1");
  // Follow-ups do not repeat the block: the session remembers it.
  turn = Run("The project's tests failed after your change.\nline two\n```\nFAILED\n```", "sess-1");
  EXPECT_EQ(turn.result.status(), v1::TASK_STATUS_SUCCEEDED) << turn.result.summary();
  EXPECT_EQ(turn.result.summary(), "second");
  EXPECT_EQ(ReadWork("repo/try.txt"), "2");
  turn = Run("Still failing.", "sess-1");
  EXPECT_EQ(turn.result.summary(), "second");
  EXPECT_TRUE(turn.events[0].session_started().resumed());

  // Another session starts at attempt 1; {"steps"} runs the same each turn.
  EXPECT_EQ(Run(block, "sess-2").result.summary(), "first");
  Run(Block(R"({"steps":[{"say":"same"}]})"), "sess-3");
  EXPECT_EQ(Run("again", "sess-3").result.summary(), "same");
}

TEST_F(ScriptedAgentTest, PathsLeavingTheWorkingDirectoryAreRefused) {
  fs::create_directory_symlink(outside(), work() / "out");
  std::ofstream(outside() / "secret") << "s";
  fs::create_symlink(outside() / "secret", work() / "repo/link");
  fs::create_symlink(outside() / "nothing-yet", work() / "repo/dangling");
  const std::vector<std::pair<std::string, std::string>> refused = {
      {R"({"write":"../escape.txt","content":"x"})", "\"..\" is not allowed"},
      {R"({"write":"repo/../../escape.txt","content":"x"})", "\"..\" is not allowed"},
      {R"({"write":"/tmp/escape.txt","content":"x"})", "absolute paths are not allowed"},
      {R"({"write":"out/escape.txt","content":"x"})", "outside the working directory"},
      {R"({"write":"repo/link","content":"x"})", "outside the working directory"},
      {R"({"write":"repo/dangling","content":"x"})", "symbolic link that points nowhere"},
      {R"({"replace":"repo/link","old":"s","new":"x"})", "outside the working directory"},
      {R"({"delete":"out/secret"})", "outside the working directory"},
      {R"({"delete":"../outside"})", "\"..\" is not allowed"},
      {R"({"patch":"--- /dev/null\n+++ b/out/escape.txt\n@@ -0,0 +1 @@\n+x\n"})",
       "beyond a symbolic link"},
      {R"({"patch":"--- /dev/null\n+++ b/../escape.txt\n@@ -0,0 +1 @@\n+x\n"})",
       "the patch does not apply"},
  };
  for (const auto& [step, why] : refused) {
    const std::string summary = Failure(absl::StrCat(R"({"steps":[)", step, "]}"));
    EXPECT_THAT(summary, HasSubstr("step 1 of 1 (")) << step;
    EXPECT_THAT(summary, HasSubstr(why)) << step;
  }
  EXPECT_EQ(Read(outside() / "secret"), "s");
  EXPECT_FALSE(fs::exists(outside() / "escape.txt"));
  EXPECT_FALSE(fs::exists(outside() / "nothing-yet"));
  EXPECT_FALSE(fs::exists(root_ / "escape.txt"));
  // A link that stays inside is followed; deleting a link removes the link.
  fs::create_symlink("app.py", work() / "repo/inside");
  EXPECT_EQ(Run(Block(R"({"steps":[{"replace":"repo/inside","old":"Hello","new":"Hi"}]})"))
                .result.status(),
            v1::TASK_STATUS_SUCCEEDED);
  EXPECT_THAT(ReadWork("repo/app.py"), HasSubstr("Hi"));
  EXPECT_EQ(Run(Block(R"({"steps":[{"delete":"repo/link"}]})")).result.status(),
            v1::TASK_STATUS_SUCCEEDED);
  EXPECT_FALSE(fs::is_symlink(work() / "repo/link"));
  EXPECT_EQ(Read(outside() / "secret"), "s");
}

TEST_F(ScriptedAgentTest, MalformedBlocksFailTheTaskSayingWhy) {
  EXPECT_THAT(Failure("{not json"), HasSubstr("the orchestrator-steps block is not a JSON object"));
  EXPECT_THAT(Failure("[]"), HasSubstr("not a JSON object"));
  EXPECT_EQ(Failure("{}"), "the orchestrator-steps block needs either \"steps\" or \"attempts\"");
  EXPECT_THAT(Failure(R"({"steps":[],"attempts":[[]]})"), HasSubstr("either"));
  EXPECT_THAT(Failure(R"({"step":[]})"), HasSubstr("unknown field \"step\""));
  EXPECT_EQ(Failure(R"({"steps":{}})"), "steps: must be a list of steps");
  EXPECT_EQ(Failure(R"({"attempts":[]})"), "attempts: must be a list of lists of steps, not empty");
  EXPECT_EQ(Failure(R"({"attempts":[[{"say":"x"}],{"say":"y"}]})"),
            "attempts[1]: must be a list of steps");
  EXPECT_EQ(Failure(R"({"steps":[{"write":"a","contnet":"x"}]})"),
            "steps[0]: unknown field \"contnet\" for write");
  EXPECT_EQ(Failure(R"({"steps":[{"write":"a"}]})"), "steps[0]: \"content\" is missing");
  EXPECT_EQ(Failure(R"({"steps":[{"write":1,"content":"x"}]})"),
            "steps[0]: \"write\" must be a string");
  EXPECT_THAT(Failure(R"({"steps":[{"write":"a","content":"x","delete":"b"}]})"),
              HasSubstr("steps[0]: a step does one thing"));
  EXPECT_THAT(Failure(R"({"steps":[{"frobnicate":"a"}]})"),
              HasSubstr("steps[0]: a step needs one of"));
  EXPECT_THAT(Failure(R"({"steps":["write"]})"), HasSubstr("steps[0]: a step must be an object"));
  EXPECT_THAT(Failure(R"({"steps":[{"replace":"a","old":"x","new":"y","count":0}]})"),
              HasSubstr("steps[0].count: must be a whole number from 1"));
  EXPECT_THAT(Failure(R"({"steps":[{"replace":"a","old":"x","new":"y","count":1.5}]})"),
              HasSubstr("steps[0].count"));
  EXPECT_EQ(Failure(R"({"steps":[{"replace":"a","old":"","new":"y"}]})"),
            "steps[0]: \"old\" is empty");
  EXPECT_THAT(Failure(R"({"steps":[{"usage":{"input_tokens":-1}}]})"),
              HasSubstr("steps[0].usage.input_tokens: must be a whole number"));
  EXPECT_THAT(Failure(R"({"steps":[{"usage":{"tokens":1}}]})"),
              HasSubstr("unknown usage field \"tokens\""));

  std::string many = R"({"attempts":[)";
  for (int i = 0; i < 201; ++i) absl::StrAppend(&many, i ? "," : "", R"([{"say":"x"}])");
  EXPECT_THAT(Failure(many + "]}"), HasSubstr("more than 200"));
  std::string steps = R"({"steps":[)";
  for (int i = 0; i < 201; ++i) absl::StrAppend(&steps, i ? "," : "", R"({"say":"x"})");
  EXPECT_EQ(Failure(steps + "]}"), "steps: more than 200 steps");
  const std::string big(kMaxStepScriptBytes, 'x');
  EXPECT_EQ(Failure(absl::StrCat(R"({"steps":[{"say":")", big, R"("}]})")),
            "the orchestrator-steps block is larger than 256 KiB");

  // Unclosed, or two blocks.
  AgentTurn turn = Run("```orchestrator-steps\n{\"steps\":[]}\n");
  EXPECT_EQ(turn.result.summary(),
            "the orchestrator-steps block is not closed (no ``` line after it)");
  turn = Run(Block(R"({"steps":[]})") + Block(R"({"steps":[]})"));
  EXPECT_EQ(turn.result.summary(), "the prompt has more than one orchestrator-steps block");
  EXPECT_EQ(turn.result.status(), v1::TASK_STATUS_FAILED);
  // Nothing was written by any of them.
  EXPECT_FALSE(fs::exists(work() / "a"));
}

TEST_F(ScriptedAgentTest, AMalformedBlockIsNotRemembered) {
  Run(Block(R"({"steps":[{"say":"good"}]})"), "s");
  EXPECT_EQ(Run(Block("{bad"), "s").result.status(), v1::TASK_STATUS_FAILED);
  EXPECT_EQ(Run("follow-up", "s").result.summary(), "good");
}

TEST_F(ScriptedAgentTest, PromptsWithoutABlockWorkAsBefore) {
  AgentTurn turn = Run("run: echo hi", "p");
  EXPECT_EQ(turn.result.summary(), "exit 0\nhi\n");
  EXPECT_THAT(ToolNames(turn), ElementsAre("Bash"));
  // A multi-line question is one turn: "what did I ask" quotes its first line.
  Run("first line\nuser: not a turn", "p");
  EXPECT_EQ(Run("what did I ask?", "p").result.summary(), "You asked: \"first line\"");
}

TEST(StepEngineTest, RunsParsedStepsAgainstADirectory) {
  const fs::path dir = fs::temp_directory_path() / absl::StrCat("step-engine-", ::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::vector<v1::AgentEvent> events;
  StepEngine engine(dir, [&](const v1::AgentEvent& e) { events.push_back(e); });
  // As a later issue's "change the text to X" would map onto steps.
  const absl::Status s =
      engine.Run({WriteStep{.path = "t.txt", .content = "old text"},
                  ReplaceStep{.path = "t.txt", .old_text = "old", .new_text = "new", .count = 1},
                  RunStep{.command = "cat t.txt"}, SayStep{.text = "done"}});
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(engine.said(), "done");
  EXPECT_EQ(engine.tool_calls(), 3);
  ASSERT_EQ(events.size(), 7u);
  EXPECT_EQ(events[5].tool_result().output(), "new text\n");
  const absl::Status refused = engine.Run({DeleteStep{.path = "/etc/passwd"}});
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace orchestrator::agents
