#include "services/agents/runner/scripted_agent.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "orchestrator/agents/v1/agents.pb.h"
#include "services/agents/runner/scripted_chain.h"
#include "services/common/process/child_process.h"

namespace orchestrator::agents {
namespace {

namespace v1 = ::orchestrator::agents::v1;
namespace fs = std::filesystem;

class Printer {
 public:
  explicit Printer(std::ostream& out) : out_(out) {}
  void Event(const v1::AgentEvent& e) {
    v1::RunTaskResponse r;
    *r.mutable_event() = e;
    Print(r);
  }
  void Result(const v1::TaskResult& result) {
    v1::RunTaskResponse r;
    *r.mutable_result() = result;
    Print(r);
  }

 private:
  void Print(const v1::RunTaskResponse& r) {
    std::string line;
    (void)google::protobuf::util::MessageToJsonString(r, &line);
    out_ << line << "\n";
    out_.flush();
  }
  std::ostream& out_;
};

struct CommandOutput {
  int exit_code = -1;
  std::string out, err;
};

// Runs the orchestrator CLI as the agent's Bash tool would, reporting the
// call and its result as events.
CommandOutput Orchestrator(const std::vector<std::string>& args, Printer& printer, int* call) {
  std::vector<std::string> argv = {"orchestrator"};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string id = absl::StrCat("call_", ++*call);
  v1::AgentEvent e;
  e.mutable_tool_call()->set_call_id(id);
  e.mutable_tool_call()->set_tool_name("Bash");
  (*e.mutable_tool_call()->mutable_input()->mutable_fields())["command"].set_string_value(
      absl::StrJoin(argv, " "));
  printer.Event(e);
  CommandOutput result;
  auto exit = RunChild(
      argv, {}, "", [&](const std::string& line) { result.out += line + "\n"; },
      absl::Now() + absl::Minutes(5), nullptr);
  if (exit.ok()) {
    result.exit_code = exit->exit_code;
    result.err = exit->stderr_tail;
  } else {
    result.err = std::string(exit.status().message());
  }
  v1::AgentEvent r;
  r.mutable_tool_result()->set_call_id(id);
  r.mutable_tool_result()->set_output(result.out + result.err);
  r.mutable_tool_result()->set_is_error(result.exit_code != 0);
  printer.Event(r);
  return result;
}

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

using google::protobuf::Struct;
using google::protobuf::Value;

absl::Status Invalid(const std::string& where, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

absl::StatusOr<std::string> StringField(const Struct& step, const std::string& key,
                                        const std::string& where) {
  auto it = step.fields().find(key);
  if (it == step.fields().end()) return Invalid(where, absl::StrCat("\"", key, "\" is missing"));
  if (it->second.kind_case() != Value::kStringValue) {
    return Invalid(where, absl::StrCat("\"", key, "\" must be a string"));
  }
  return it->second.string_value();
}

absl::StatusOr<int64_t> IntegerField(const Value& v, const std::string& where, int64_t min,
                                     int64_t max) {
  const double n = v.number_value();
  if (v.kind_case() != Value::kNumberValue || std::floor(n) != n || n < static_cast<double>(min) ||
      n > static_cast<double>(max)) {
    return Invalid(where, absl::StrCat("must be a whole number from ", min, " to ", max));
  }
  return static_cast<int64_t>(n);
}

// One step object: its action key and the fields that action takes.
absl::StatusOr<ScriptedStep> ParseStep(const Value& value, const std::string& where) {
  if (value.kind_case() != Value::kStructValue) return Invalid(where, "a step must be an object");
  const Struct& step = value.struct_value();
  static const std::map<std::string, std::set<std::string>> kActions = {
      {"write", {"content"}},
      {"replace", {"old", "new", "count"}},
      {"patch", {}},
      {"delete", {}},
      {"run", {}},
      {"say", {}},
      {"usage", {}}};
  std::string action;
  for (const auto& [key, v] : step.fields()) {
    if (!kActions.contains(key)) continue;
    if (!action.empty()) {
      return Invalid(
          where, absl::StrCat("a step does one thing: both \"", action, "\" and \"", key, "\""));
    }
    action = key;
  }
  if (action.empty()) {
    return Invalid(where, "a step needs one of write, replace, patch, delete, run, say or usage");
  }
  for (const auto& [key, v] : step.fields()) {
    if (key != action && !kActions.at(action).contains(key)) {
      return Invalid(where, absl::StrCat("unknown field \"", key, "\" for ", action));
    }
  }
  if (action == "usage") {
    const Value& u = step.fields().at("usage");
    if (u.kind_case() != Value::kStructValue) {
      return Invalid(where, "\"usage\" must be an object");
    }
    UsageStep usage;
    const std::map<std::string, int64_t*> fields = {
        {"input_tokens", &usage.input_tokens},
        {"output_tokens", &usage.output_tokens},
        {"cache_read_tokens", &usage.cache_read_tokens},
        {"cache_write_tokens", &usage.cache_write_tokens},
        {"cost_usd_micros", &usage.cost_usd_micros}};
    for (const auto& [key, v] : u.struct_value().fields()) {
      auto it = fields.find(key);
      if (it == fields.end())
        return Invalid(where, absl::StrCat("unknown usage field \"", key, "\""));
      // Exact in a JSON number (a double).
      auto n = IntegerField(v, absl::StrCat(where, ".usage.", key), 0, int64_t{1} << 53);
      if (!n.ok()) return n.status();
      *it->second = *n;
    }
    return usage;
  }
  auto subject = StringField(step, action, where);
  if (!subject.ok()) return subject.status();
  if (action == "write") {
    auto content = StringField(step, "content", where);
    if (!content.ok()) return content.status();
    return WriteStep{.path = *subject, .content = *content};
  }
  if (action == "replace") {
    auto old_text = StringField(step, "old", where);
    if (!old_text.ok()) return old_text.status();
    if (old_text->empty()) return Invalid(where, "\"old\" is empty");
    auto new_text = StringField(step, "new", where);
    if (!new_text.ok()) return new_text.status();
    ReplaceStep replace{.path = *subject, .old_text = *old_text, .new_text = *new_text, .count = 1};
    if (auto it = step.fields().find("count"); it != step.fields().end()) {
      auto count = IntegerField(it->second, where + ".count", 1, 1000000);
      if (!count.ok()) return count.status();
      replace.count = static_cast<int>(*count);
    }
    return replace;
  }
  if (action == "patch") return PatchStep{.diff = *subject};
  if (action == "delete") return DeleteStep{.path = *subject};
  if (action == "run") return RunStep{.command = *subject};
  return SayStep{.text = *subject};
}

absl::StatusOr<std::vector<ScriptedStep>> ParseSteps(const Value& list, const std::string& where,
                                                     size_t* total) {
  if (list.kind_case() != Value::kListValue) return Invalid(where, "must be a list of steps");
  std::vector<ScriptedStep> steps;
  for (int i = 0; i < list.list_value().values_size(); ++i) {
    if (++*total > kMaxScriptedSteps) {
      return Invalid(where, absl::StrCat("more than ", kMaxScriptedSteps, " steps"));
    }
    auto step = ParseStep(list.list_value().values(i), absl::StrCat(where, "[", i, "]"));
    if (!step.ok()) return step.status();
    steps.push_back(*std::move(step));
  }
  return steps;
}

bool IsFence(absl::string_view line, absl::string_view info) {
  line = absl::StripAsciiWhitespace(line);
  return absl::ConsumePrefix(&line, "```") && absl::StripAsciiWhitespace(line) == info;
}

// The lines a session's log holds for one turn: "user: " before the
// prompt's first line and "  " before each further one, so that each turn
// is one "user: " line however many lines its prompt has.
std::string LoggedPrompt(const std::string& prompt) {
  return absl::StrCat("user: ", absl::StrReplaceAll(prompt, {{"\n", "\n  "}}));
}

int TurnsIn(const std::vector<std::string>& history) {
  int turns = 0;
  for (const auto& line : history) {
    if (absl::StartsWith(line, "user: ")) ++turns;
  }
  return turns;
}

std::optional<std::string> ReadWhole(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The id of the caller's project named `name` ("" when none).
std::string ProjectIdNamed(const std::string& name, Printer& printer, int* calls) {
  auto r = Orchestrator({"project", "list", "--json"}, printer, calls);
  google::protobuf::Struct list;
  if (r.exit_code != 0 || !google::protobuf::util::JsonStringToMessage(r.out, &list).ok()) {
    return "";
  }
  auto projects = list.fields().find("projects");
  if (projects == list.fields().end()) return "";
  for (const auto& p : projects->second.list_value().values()) {
    const auto& fields = p.struct_value().fields();
    auto n = fields.find("name");
    auto id = fields.find("id");
    if (n != fields.end() && id != fields.end() && n->second.string_value() == name) {
      return id->second.string_value();
    }
  }
  return "";
}

// The last good commit a fix task after a failed deploy names (the deploy
// component's DeployFixer::TaskOf), if the prompt is one.
std::optional<std::string> LastGoodCommit(const std::string& prompt) {
  constexpr char kFailing[] = "\nFailing commit: ";
  constexpr char kGood[] = "\nLast good commit: ";
  const size_t good = prompt.find(kGood);
  if (prompt.find(kFailing) == std::string::npos || good == std::string::npos) return std::nullopt;
  std::string sha = prompt.substr(good + sizeof(kGood) - 1, 40);
  const bool hex = sha.size() == 40 && std::all_of(sha.begin(), sha.end(), [](char c) {
                     return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                   });
  if (!hex) return std::nullopt;
  return sha;
}

}  // namespace

const std::vector<ScriptedStep>& StepScript::ForAttempt(int attempt) const {
  static const std::vector<ScriptedStep> kNone;
  if (attempts.empty()) return kNone;
  const size_t i = static_cast<size_t>(std::max(attempt, 1)) - 1;
  return attempts[std::min(i, attempts.size() - 1)];
}

absl::StatusOr<std::optional<std::string>> StepsBlockOf(const std::string& prompt) {
  std::vector<absl::string_view> lines = absl::StrSplit(prompt, '\n');
  std::optional<std::string> block;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!IsFence(lines[i], "orchestrator-steps")) continue;
    if (block.has_value()) {
      return absl::InvalidArgumentError("the prompt has more than one orchestrator-steps block");
    }
    size_t end = i + 1;
    while (end < lines.size() && !IsFence(lines[end], "")) ++end;
    if (end == lines.size()) {
      return absl::InvalidArgumentError(
          "the orchestrator-steps block is not closed (no ``` line after it)");
    }
    std::string text;
    for (size_t j = i + 1; j < end; ++j) {
      absl::StrAppend(&text, lines[j], "\n");
      if (text.size() > kMaxStepScriptBytes) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the orchestrator-steps block is larger than ", kMaxStepScriptBytes / 1024, " KiB"));
      }
    }
    block = std::move(text);
    i = end;
  }
  return block;
}

absl::StatusOr<StepScript> ParseStepScript(const std::string& json) {
  if (json.size() > kMaxStepScriptBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the orchestrator-steps block is larger than ",
                                                   kMaxStepScriptBytes / 1024, " KiB"));
  }
  Struct root;
  if (auto s = google::protobuf::util::JsonStringToMessage(json, &root); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the orchestrator-steps block is not a JSON object: ", s.message().ToString()));
  }
  const auto& fields = root.fields();
  for (const auto& [key, v] : fields) {
    if (key != "steps" && key != "attempts") {
      return absl::InvalidArgumentError(absl::StrCat(
          "the orchestrator-steps block: unknown field \"", key, "\" (steps or attempts)"));
    }
  }
  const bool has_steps = fields.contains("steps"), has_attempts = fields.contains("attempts");
  if (has_steps == has_attempts) {
    return absl::InvalidArgumentError(
        "the orchestrator-steps block needs either \"steps\" or \"attempts\"");
  }
  StepScript script;
  size_t total = 0;
  if (has_steps) {
    auto steps = ParseSteps(fields.at("steps"), "steps", &total);
    if (!steps.ok()) return steps.status();
    script.attempts.push_back(*std::move(steps));
    return script;
  }
  const Value& attempts = fields.at("attempts");
  if (attempts.kind_case() != Value::kListValue || attempts.list_value().values().empty()) {
    return absl::InvalidArgumentError("attempts: must be a list of lists of steps, not empty");
  }
  if (attempts.list_value().values_size() > static_cast<int>(kMaxScriptedSteps)) {
    return absl::InvalidArgumentError(
        absl::StrCat("attempts: more than ", kMaxScriptedSteps, " attempts"));
  }
  for (int i = 0; i < attempts.list_value().values_size(); ++i) {
    auto steps =
        ParseSteps(attempts.list_value().values(i), absl::StrCat("attempts[", i, "]"), &total);
    if (!steps.ok()) return steps.status();
    script.attempts.push_back(*std::move(steps));
  }
  return script;
}

int RunScriptedAgent(const std::string& prompt, const std::string& session_id, std::ostream& out) {
  const char* home = std::getenv("HOME");
  std::error_code ec;
  ScriptedAgentPaths paths;
  paths.working_directory = fs::current_path(ec).string();
  paths.state_directory = (fs::path(home != nullptr ? home : "/tmp") / ".scripted-agent").string();
  return RunScriptedAgent(prompt, session_id, paths, out);
}

int RunScriptedAgent(const std::string& prompt, const std::string& session_id,
                     const ScriptedAgentPaths& paths, std::ostream& out) {
  Printer printer(out);
  const fs::path dir = paths.state_directory;
  std::error_code ec;
  fs::create_directories(dir, ec);
  std::string id = session_id;
  const bool resumed = !id.empty() && fs::exists(dir / (id + ".log"));
  if (id.empty()) {
    absl::BitGen gen;
    id = absl::StrCat("scripted-", absl::Hex(absl::Uniform<uint64_t>(gen)));
  }
  std::vector<std::string> history;
  {
    std::ifstream in(dir / (id + ".log"));
    std::string line;
    while (std::getline(in, line)) history.push_back(line);
  }
  {
    // The turn counts from its start, as a model's session records the
    // user's message: a turn killed halfway (a timeout) is still one.
    std::ofstream log(dir / (id + ".log"), std::ios::app);
    log << LoggedPrompt(prompt) << "\n";
  }
  v1::AgentEvent started;
  started.mutable_session_started()->set_agent_session_id(id);
  started.mutable_session_started()->set_model("scripted");
  started.mutable_session_started()->set_resumed(resumed);
  printer.Event(started);

  const std::string text = absl::AsciiStrToLower(prompt);
  std::smatch m;
  std::string reply;
  int calls = 0;
  v1::TaskResult result;
  result.set_status(v1::TASK_STATUS_SUCCEEDED);
  bool replied = false;  // the reply already went out as text
  const auto emit = [&](const v1::AgentEvent& e) { printer.Event(e); };

  // The steps this turn runs: the prompt's block, or the one the session
  // was given before (a follow-up turn does not repeat it).
  const fs::path steps_file = dir / (id + ".steps");
  absl::StatusOr<std::optional<std::string>> block = StepsBlockOf(prompt);
  const bool block_in_prompt = !block.ok() || block->has_value();
  if (!block_in_prompt && !absl::StartsWith(prompt, "run: ")) {
    if (auto saved = ReadWhole(steps_file)) *block = std::move(saved);
  }
  if (!block.ok() || block->has_value()) {
    const int attempt = 1 + TurnsIn(history);
    absl::StatusOr<StepScript> script =
        block.ok() ? ParseStepScript(**block) : absl::StatusOr<StepScript>(block.status());
    absl::Status ran = script.status();
    StepEngine engine(paths.working_directory, emit);
    if (script.ok()) {
      if (block_in_prompt) std::ofstream(steps_file, std::ios::binary | std::ios::trunc) << **block;
      ran = engine.Run(script->ForAttempt(attempt));
    }
    calls = engine.tool_calls();
    *result.mutable_usage() = engine.usage();
    if (!ran.ok()) {
      result.set_status(v1::TASK_STATUS_FAILED);
      reply = std::string(ran.message());
    } else if (!engine.said().empty()) {
      reply = engine.said();
      replied = true;
    } else {
      const size_t n = script->ForAttempt(attempt).size();
      reply =
          absl::StrCat("Ran ", n, " scripted step", n == 1 ? "" : "s", " (attempt ", attempt, ").");
    }
  } else if (absl::StartsWith(prompt, "run: ")) {
    // A shell command, as a model asks its Bash tool to run one.
    const BashToolRun run = RunBashTool(prompt.substr(strlen("run: ")), paths.working_directory,
                                        absl::StrCat("call_", ++calls), emit);
    reply = absl::StrCat("exit ", run.exit_code, "\n", run.output);
  } else if (auto chained = RunChainTurn(prompt, (dir / (id + ".chain")).string(),
                                         [&](const std::vector<std::string>& args) {
                                           CommandOutput r = Orchestrator(args, printer, &calls);
                                           return CliOutput{r.exit_code, r.out, r.err};
                                         })) {
    // From one message to a live URL, a step per turn (scripted_chain.h).
    reply = *chained;
  } else if (auto good = LastGoodCommit(prompt)) {
    // The platform's fix task after a failed deploy (after the chain: a
    // news turn quoting a log must not read as one): the scripted
    // developer undoes what broke it, restoring the files of the last
    // commit that deployed healthy (a model would read the failure).
    const BashToolRun run = RunBashTool(
        absl::StrCat("git -C repo checkout ", *good, " -- . && git -C repo status --short"),
        paths.working_directory, absl::StrCat("call_", ++calls), emit);
    if (run.exit_code == 0) {
      reply =
          absl::StrCat("Restored the files of commit ", good->substr(0, 12),
                       ", the last one that deployed healthy: the change that failed is undone.");
    } else {
      result.set_status(v1::TASK_STATUS_FAILED);
      reply = absl::StrCat("I could not restore commit ", good->substr(0, 12), ": ",
                           FirstLine(run.output));
    }
  } else if (text.size() <= 200 &&
             std::regex_search(text, m, std::regex(R"(^yes, delete ([a-z][a-z0-9-]{0,62})$)"))) {
    // The user's yes to the question below (a button on Telegram).
    const std::string name = m[1];
    const std::string id = ProjectIdNamed(name, printer, &calls);
    auto r = id.empty() ? CommandOutput{1, "", "no such project"}
                        : Orchestrator({"project", "delete", id}, printer, &calls);
    reply = r.exit_code == 0 ? absl::StrCat("Deleted project ", name, ".")
                             : absl::StrCat("I could not delete ", name, ": ", FirstLine(r.err));
  } else if (text.size() <= 200 &&
             std::regex_search(text, m, std::regex(R"(^no, keep ([a-z][a-z0-9-]{0,62})$)"))) {
    reply = absl::StrCat("Kept ", m[1].str(), ": nothing was deleted.");
  } else if (text.size() <= 200 &&
             std::regex_search(text, m,
                               std::regex(R"(delete (?:the )?project ([a-z][a-z0-9-]{0,62}))"))) {
    // Destructive: asked first, with the answers as buttons; acted on only
    // at the user's yes.
    const std::string name = m[1];
    const std::string question = absl::StrCat("Delete project ", name,
                                              "? Its repository record, jobs and secrets go; it "
                                              "cannot be undone.");
    auto r = Orchestrator({"respond", question, "--choice", absl::StrCat("Yes, delete ", name),
                           "--choice", absl::StrCat("No, keep ", name)},
                          printer, &calls);
    reply = r.exit_code == 0 ? question : absl::StrCat("I could not ask you: ", FirstLine(r.err));
  } else if (std::regex_search(
                 text, m,
                 std::regex(R"(create (?:a )?project (?:named |called )?([a-z][a-z0-9-]*))"))) {
    const std::string name = m[1];
    auto r = Orchestrator({"project", "create", name, "--json"}, printer, &calls);
    reply = r.exit_code == 0
                ? absl::StrCat("Created project ", name, " (", JsonPath(r.out, "project.id"), ").")
                : absl::StrCat("I could not create project ", name, ": ", FirstLine(r.err));
  } else if (std::regex_search(text, m, std::regex(R"((?:list|show) (?:my )?projects)"))) {
    auto r = Orchestrator({"project", "list"}, printer, &calls);
    reply = r.exit_code == 0 ? "Your projects:\n" + r.out
                             : "I could not list your projects: " + FirstLine(r.err);
  } else if (std::regex_search(text, m, std::regex(R"(deploy ([a-z0-9_][a-z0-9_-]*))"))) {
    auto r = Orchestrator({"deploy", "trigger", m[1], "--json"}, printer, &calls);
    reply = r.exit_code == 0 ? absl::StrCat("Deploying; job ", JsonPath(r.out, "job.id"), ".")
                             : "I could not deploy: " + FirstLine(r.err);
  } else if (std::regex_search(text, m, std::regex(R"((?:start|run) a demo job)"))) {
    auto r = Orchestrator(
        {"jobs", "demo", "demo.sleep", "--params", R"({"seconds":1,"steps":2})", "--json"}, printer,
        &calls);
    reply = r.exit_code == 0 ? absl::StrCat("Started job ", JsonPath(r.out, "job.id"),
                                            "; I will tell you when it finishes.")
                             : "I could not start a job: " + FirstLine(r.err);
  } else if (std::regex_search(
                 text, m,
                 std::regex(
                     R"(job (job_[a-z0-9]+)[^.]{0,200} (succeeded|failed|was cancelled))"))) {
    reply = absl::StrCat("Your job ", std::string(m[1]), " ", std::string(m[2]), ".");
  } else if (std::regex_search(text, m, std::regex(R"((?:wait|sleep) (\d{1,4}) seconds?)"))) {
    // Something that takes a while, as real work does.
    const std::string seconds = m[1];
    v1::AgentEvent e;
    e.mutable_tool_call()->set_call_id(absl::StrCat("call_", ++calls));
    e.mutable_tool_call()->set_tool_name("Bash");
    (*e.mutable_tool_call()->mutable_input()->mutable_fields())["command"].set_string_value(
        "sleep " + seconds);
    printer.Event(e);
    (void)RunChild({"sleep", seconds}, {}, "", nullptr, absl::InfiniteFuture(), nullptr);
    reply = absl::StrCat("Waited ", seconds, " seconds.");
  } else if (std::regex_search(prompt, m, std::regex(R"((?:is|check) ([A-Z_][A-Z0-9_]*) set)"))) {
    // Whether a variable (a granted secret, say) is there; never its value.
    const std::string name = m[1];
    const char* value = std::getenv(name.c_str());
    reply = value != nullptr ? absl::StrCat(name, " is set (", strlen(value), " characters).")
                             : absl::StrCat(name, " is not set.");
  } else if (std::regex_search(prompt, m,
                               std::regex(R"re(respond "([^"]+)" then say "([^"]*)")re"))) {
    // Answers with `orchestrator respond`, then ends the turn with these words.
    auto r = Orchestrator({"respond", m[1]}, printer, &calls);
    reply = r.exit_code == 0 ? std::string(m[2]) : "I could not respond: " + FirstLine(r.err);
  } else if (std::regex_search(text, std::regex(R"(what did i (?:ask|say))"))) {
    std::string last;
    for (const auto& h : history) {
      if (absl::StartsWith(h, "user: ")) last = h.substr(6);
    }
    reply = last.empty() ? "This is the first thing you asked me."
                         : absl::StrCat("You asked: \"", last, "\"");
  } else {
    reply =
        "I can create a project (\"create project NAME\"), build one and put it online "
        "(\"build a python service called NAME that answers TEXT\", then \"change the text to "
        "TEXT\"), list your projects, deploy one (\"deploy PROJECT\") and start a demo job.";
  }
  {
    std::ofstream log(dir / (id + ".log"), std::ios::app);
    log << "agent: " << FirstLine(reply) << "\n";
  }
  if (!replied) {
    v1::AgentEvent said;
    said.mutable_text()->set_text(reply);
    printer.Event(said);
  }
  result.set_summary(reply);
  result.set_agent_session_id(id);
  result.mutable_usage()->set_turns(1 + calls);
  printer.Result(result);
  return result.status() == v1::TASK_STATUS_SUCCEEDED ? 0 : 1;
}

}  // namespace orchestrator::agents
