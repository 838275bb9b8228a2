#include "services/agents/runner/agent_adapter.h"

#include <google/protobuf/util/json_util.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace orchestrator::agents {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

constexpr size_t kMaxToolOutput = 64 * 1024;

bool Parse(const std::string& line, Struct* out) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  return !line.empty() && line[0] == '{' &&
         google::protobuf::util::JsonStringToMessage(line, out, options).ok();
}

const Value* Field(const Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  return it == s.fields().end() ? nullptr : &it->second;
}
std::string Str(const Struct& s, const std::string& key) {
  const Value* v = Field(s, key);
  return v != nullptr && v->has_string_value() ? v->string_value() : "";
}
double Num(const Struct& s, const std::string& key) {
  const Value* v = Field(s, key);
  return v != nullptr && v->kind_case() == Value::kNumberValue ? v->number_value() : 0;
}
bool Bool(const Struct& s, const std::string& key) {
  const Value* v = Field(s, key);
  return v != nullptr && v->kind_case() == Value::kBoolValue && v->bool_value();
}
const Struct* Obj(const Struct& s, const std::string& key) {
  const Value* v = Field(s, key);
  return v != nullptr && v->has_struct_value() ? &v->struct_value() : nullptr;
}
std::vector<const Value*> List(const Struct& s, const std::string& key) {
  std::vector<const Value*> out;
  const Value* v = Field(s, key);
  if (v != nullptr && v->has_list_value()) {
    for (const auto& item : v->list_value().values()) out.push_back(&item);
  }
  return out;
}

v1::AgentEvent Text(const std::string& text, bool thinking) {
  v1::AgentEvent e;
  e.mutable_text()->set_text(text);
  e.mutable_text()->set_thinking(thinking);
  return e;
}

v1::AgentEvent Call(const std::string& id, const std::string& tool, const Struct* input) {
  v1::AgentEvent e;
  e.mutable_tool_call()->set_call_id(id);
  e.mutable_tool_call()->set_tool_name(tool);
  if (input != nullptr) *e.mutable_tool_call()->mutable_input() = *input;
  return e;
}

v1::AgentEvent Result(const std::string& id, std::string output, bool is_error) {
  v1::AgentEvent e;
  auto* r = e.mutable_tool_result();
  r->set_call_id(id);
  if (output.size() > kMaxToolOutput) {
    output.resize(kMaxToolOutput);
    r->set_truncated(true);
  }
  r->set_output(std::move(output));
  r->set_is_error(is_error);
  return e;
}

// Claude Code: `claude -p … --output-format stream-json --verbose`. One JSON
// object per line: system/init, assistant and user messages (Anthropic
// content blocks), then a result object.
class ClaudeCodeAdapter final : public AgentAdapter {
 public:
  std::vector<std::string> Command(const TaskInput& task) override {
    std::vector<std::string> c = {"claude",
                                  "-p",
                                  task.prompt,
                                  "--output-format",
                                  "stream-json",
                                  "--verbose",
                                  "--dangerously-skip-permissions"};
    if (!task.agent_session_id.empty()) c.insert(c.end(), {"--resume", task.agent_session_id});
    resumed_ = !task.agent_session_id.empty();
    return c;
  }
  std::map<std::string, std::string> Environment() const override {
    return {{"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"}, {"DISABLE_AUTOUPDATER", "1"}};
  }
  void OnLine(const std::string& line, std::vector<v1::AgentEvent>* events,
              v1::TaskResult* result) override {
    Struct m;
    if (!Parse(line, &m)) return;
    const std::string type = Str(m, "type");
    if (type == "system" && Str(m, "subtype") == "init") {
      v1::AgentEvent e;
      e.mutable_session_started()->set_agent_session_id(Str(m, "session_id"));
      e.mutable_session_started()->set_model(Str(m, "model"));
      e.mutable_session_started()->set_resumed(resumed_);
      result->set_agent_session_id(Str(m, "session_id"));
      events->push_back(std::move(e));
      return;
    }
    const Struct* message = Obj(m, "message");
    if ((type == "assistant" || type == "user") && message != nullptr) {
      for (const Value* block : List(*message, "content")) {
        if (!block->has_struct_value()) continue;
        const Struct& b = block->struct_value();
        const std::string kind = Str(b, "type");
        if (kind == "text") {
          events->push_back(Text(Str(b, "text"), false));
        } else if (kind == "thinking") {
          events->push_back(Text(Str(b, "thinking"), true));
        } else if (kind == "tool_use") {
          events->push_back(Call(Str(b, "id"), Str(b, "name"), Obj(b, "input")));
        } else if (kind == "tool_result") {
          std::string output = Str(b, "content");
          for (const Value* part : List(b, "content")) {
            if (part->has_struct_value()) output += Str(part->struct_value(), "text");
          }
          events->push_back(Result(Str(b, "tool_use_id"), std::move(output), Bool(b, "is_error")));
        }
      }
      return;
    }
    if (type == "result") {
      result->set_summary(Str(m, "result"));
      if (!Str(m, "session_id").empty()) result->set_agent_session_id(Str(m, "session_id"));
      const bool failed = Bool(m, "is_error") || absl::StartsWith(Str(m, "subtype"), "error");
      result->set_status(failed ? v1::TASK_STATUS_FAILED : v1::TASK_STATUS_SUCCEEDED);
      if (failed && result->summary().empty()) result->set_summary(Str(m, "subtype"));
      auto* usage = result->mutable_usage();
      if (const Struct* u = Obj(m, "usage")) {
        usage->set_input_tokens(static_cast<int64_t>(Num(*u, "input_tokens")));
        usage->set_output_tokens(static_cast<int64_t>(Num(*u, "output_tokens")));
        usage->set_cache_read_tokens(static_cast<int64_t>(Num(*u, "cache_read_input_tokens")));
        usage->set_cache_write_tokens(static_cast<int64_t>(Num(*u, "cache_creation_input_tokens")));
      }
      usage->set_cost_usd_micros(std::llround(Num(m, "total_cost_usd") * 1e6));
      usage->set_turns(static_cast<int32_t>(Num(m, "num_turns")));
      v1::AgentEvent e;
      *e.mutable_usage() = *usage;
      events->push_back(std::move(e));
    }
  }

 private:
  bool resumed_ = false;  // the task resumes a session
};

// Codex: `codex exec --json`. Thread and turn events, and items (agent
// messages, reasoning, command executions, file changes) started and
// completed.
class CodexAdapter final : public AgentAdapter {
 public:
  // OPENAI_BASE_URL in the worker's environment: Codex reaches the model
  // there (an OpenAI-compatible Responses API), through a provider in its
  // config; a config someone else wrote is left alone.
  void Prepare() override {
    const char* base = std::getenv("OPENAI_BASE_URL");
    const char* home = std::getenv("HOME");
    if (base == nullptr || home == nullptr || *base == '\0') return;
    const std::filesystem::path dir = std::filesystem::path(home) / ".codex";
    const std::filesystem::path file = dir / "config.toml";
    constexpr char kMarker[] = "# written by orchestrator-runner from OPENAI_BASE_URL";
    if (std::filesystem::exists(file)) {
      std::ifstream in(file);
      std::string first;
      std::getline(in, first);
      if (first != kMarker) return;
    }
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    std::ofstream out(file, std::ios::trunc);
    out << kMarker << "\nmodel_provider = \"orchestrator\"\n\n[model_providers.orchestrator]\n"
        << "name = \"OpenAI-compatible (OPENAI_BASE_URL)\"\nbase_url = \"" << base << "\"\n"
        << "env_key = \"OPENAI_API_KEY\"\nwire_api = \"responses\"\n";
  }
  std::vector<std::string> Command(const TaskInput& task) override {
    std::vector<std::string> c = {"codex", "exec", "--json", "--skip-git-repo-check",
                                  "--dangerously-bypass-approvals-and-sandbox"};
    if (!task.agent_session_id.empty()) c.insert(c.end(), {"resume", task.agent_session_id});
    c.push_back(task.prompt);
    resumed_ = !task.agent_session_id.empty();
    return c;
  }
  void OnLine(const std::string& line, std::vector<v1::AgentEvent>* events,
              v1::TaskResult* result) override {
    Struct m;
    if (!Parse(line, &m)) return;
    const std::string type = Str(m, "type");
    if (type == "thread.started") {
      v1::AgentEvent e;
      e.mutable_session_started()->set_agent_session_id(Str(m, "thread_id"));
      e.mutable_session_started()->set_resumed(resumed_);
      result->set_agent_session_id(Str(m, "thread_id"));
      events->push_back(std::move(e));
    } else if (type == "item.started" || type == "item.completed") {
      const Struct* item = Obj(m, "item");
      if (item == nullptr) return;
      const std::string kind = Str(*item, "type"), id = Str(*item, "id");
      const bool done = type == "item.completed";
      if (kind == "agent_message" && done) {
        events->push_back(Text(Str(*item, "text"), false));
        result->set_summary(Str(*item, "text"));
      } else if (kind == "reasoning" && done) {
        events->push_back(Text(Str(*item, "text"), true));
      } else if (kind == "command_execution") {
        if (!done) {
          Struct input;
          (*input.mutable_fields())["command"].set_string_value(Str(*item, "command"));
          events->push_back(Call(id, "shell", &input));
        } else {
          events->push_back(
              Result(id, Str(*item, "aggregated_output"), Num(*item, "exit_code") != 0));
        }
      } else if ((kind == "file_change" || kind == "mcp_tool_call" || kind == "web_search") &&
                 done) {
        events->push_back(Call(id, kind, item));
        events->push_back(Result(id, Str(*item, "status"), Str(*item, "status") == "failed"));
      }
    } else if (type == "turn.completed") {
      if (const Struct* u = Obj(m, "usage")) {
        auto* usage = result->mutable_usage();
        usage->set_input_tokens(usage->input_tokens() +
                                static_cast<int64_t>(Num(*u, "input_tokens")));
        usage->set_output_tokens(usage->output_tokens() +
                                 static_cast<int64_t>(Num(*u, "output_tokens")));
        usage->set_cache_read_tokens(usage->cache_read_tokens() +
                                     static_cast<int64_t>(Num(*u, "cached_input_tokens")));
        usage->set_turns(usage->turns() + 1);
        v1::AgentEvent e;
        *e.mutable_usage() = *usage;
        events->push_back(std::move(e));
      }
      result->set_status(v1::TASK_STATUS_SUCCEEDED);
    } else if (type == "turn.failed" || type == "error") {
      const Struct* error = Obj(m, "error");
      result->set_status(v1::TASK_STATUS_FAILED);
      result->set_summary(error != nullptr ? Str(*error, "message") : Str(m, "message"));
    }
  }

 private:
  bool resumed_ = false;  // the task resumes a session
};

// Factory droid: `droid exec -o json` prints one result object at the end.
class DroidAdapter final : public AgentAdapter {
 public:
  std::vector<std::string> Command(const TaskInput& task) override {
    std::vector<std::string> c = {"droid", "exec", "-o", "json", "--skip-permissions-unsafe"};
    if (!task.agent_session_id.empty()) c.insert(c.end(), {"-s", task.agent_session_id});
    c.push_back(task.prompt);
    return c;
  }
  void OnLine(const std::string& line, std::vector<v1::AgentEvent>* events,
              v1::TaskResult* result) override {
    Struct m;
    if (!Parse(line, &m)) return;
    const std::string text = Str(m, "result");
    if (!text.empty()) events->push_back(Text(text, false));
    result->set_summary(text);
    result->set_agent_session_id(Str(m, "session_id"));
    result->set_status(Bool(m, "is_error") ? v1::TASK_STATUS_FAILED : v1::TASK_STATUS_SUCCEEDED);
    result->mutable_usage()->set_turns(static_cast<int32_t>(Num(m, "num_turns")));
  }
};

// The scripted agent speaks the runner's own language: one RunTaskResponse
// (an event, or the result) in the protobuf JSON mapping per line.
class ScriptedAdapter final : public AgentAdapter {
 public:
  explicit ScriptedAdapter(std::vector<std::string> command) : command_(std::move(command)) {}
  std::vector<std::string> Command(const TaskInput& task) override {
    std::vector<std::string> c = command_;
    c.insert(c.end(), {"--prompt", task.prompt});
    if (!task.agent_session_id.empty()) c.insert(c.end(), {"--session", task.agent_session_id});
    return c;
  }
  void OnLine(const std::string& line, std::vector<v1::AgentEvent>* events,
              v1::TaskResult* result) override {
    v1::RunTaskResponse r;
    if (!google::protobuf::util::JsonStringToMessage(line, &r).ok()) return;
    if (r.has_event()) {
      if (r.event().has_session_started()) {
        result->set_agent_session_id(r.event().session_started().agent_session_id());
      }
      events->push_back(r.event());
    } else if (r.has_result()) {
      result->MergeFrom(r.result());
    }
  }

 private:
  std::vector<std::string> command_;
};

}  // namespace

void AgentAdapter::Finish(int exit_code, v1::TaskResult* result) {
  if (result->status() != v1::TASK_STATUS_UNSPECIFIED) return;
  if (exit_code == 0) {
    result->set_status(v1::TASK_STATUS_SUCCEEDED);
  } else {
    result->set_status(v1::TASK_STATUS_FAILED);
    if (result->summary().empty()) {
      result->set_summary(absl::StrCat("the agent exited with status ", exit_code));
    }
  }
}

std::unique_ptr<AgentAdapter> MakeAdapter(v1::AgentType type,
                                          const std::vector<std::string>& scripted_command) {
  switch (type) {
    case v1::AGENT_TYPE_CLAUDE_CODE:
      return std::make_unique<ClaudeCodeAdapter>();
    case v1::AGENT_TYPE_CODEX:
      return std::make_unique<CodexAdapter>();
    case v1::AGENT_TYPE_FACTORY_DROID:
      return std::make_unique<DroidAdapter>();
    default:
      return std::make_unique<ScriptedAdapter>(scripted_command);
  }
}

bool ExtractResultBlock(const std::string& text, google::protobuf::Struct* payload) {
  const size_t open = text.rfind("<result>");
  if (open == std::string::npos) return false;
  const size_t close = text.find("</result>", open);
  if (close == std::string::npos) return false;
  const std::string json(absl::StripAsciiWhitespace(text.substr(open + 8, close - open - 8)));
  return google::protobuf::util::JsonStringToMessage(json, payload).ok();
}

}  // namespace orchestrator::agents
