#include "services/agents/runner/scripted_agent.h"

#include <google/protobuf/util/json_util.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "orchestrator/agents/v1/agents.pb.h"
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

std::string JsonField(const std::string& json, const std::string& path) {
  google::protobuf::Struct s;
  if (!google::protobuf::util::JsonStringToMessage(json, &s).ok()) return "";
  const google::protobuf::Struct* at = &s;
  std::string key;
  std::istringstream parts(path);
  std::vector<std::string> keys;
  while (std::getline(parts, key, '.')) keys.push_back(key);
  for (size_t i = 0; i < keys.size(); ++i) {
    auto it = at->fields().find(keys[i]);
    if (it == at->fields().end()) return "";
    if (i + 1 == keys.size()) return it->second.string_value();
    if (!it->second.has_struct_value()) return "";
    at = &it->second.struct_value();
  }
  return "";
}

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

int RunScriptedAgent(const std::string& prompt, const std::string& session_id, std::ostream& out) {
  Printer printer(out);
  const char* home = std::getenv("HOME");
  const fs::path dir = fs::path(home != nullptr ? home : "/tmp") / ".scripted-agent";
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
  v1::AgentEvent started;
  started.mutable_session_started()->set_agent_session_id(id);
  started.mutable_session_started()->set_model("scripted");
  started.mutable_session_started()->set_resumed(resumed);
  printer.Event(started);

  const std::string text = absl::AsciiStrToLower(prompt);
  std::smatch m;
  std::string reply;
  int calls = 0;
  if (absl::StartsWith(prompt, "run: ")) {
    // A shell command, as a model asks its Bash tool to run one.
    const std::string command = prompt.substr(strlen("run: "));
    v1::AgentEvent e;
    const std::string id = absl::StrCat("call_", ++calls);
    e.mutable_tool_call()->set_call_id(id);
    e.mutable_tool_call()->set_tool_name("Bash");
    (*e.mutable_tool_call()->mutable_input()->mutable_fields())["command"].set_string_value(
        command);
    printer.Event(e);
    std::string output;
    auto exit = RunChild(
        {"/bin/sh", "-c", command}, {}, "", [&](const std::string& line) { output += line + "\n"; },
        absl::Now() + absl::Minutes(5), nullptr);
    constexpr size_t kMaxOutput = 64 * 1024;
    if (output.size() > kMaxOutput) output.resize(kMaxOutput);
    const int code = exit.ok() ? exit->exit_code : -1;
    const std::string err = exit.ok() ? exit->stderr_tail : std::string(exit.status().message());
    v1::AgentEvent r;
    r.mutable_tool_result()->set_call_id(id);
    r.mutable_tool_result()->set_output(output + err);
    r.mutable_tool_result()->set_is_error(code != 0);
    printer.Event(r);
    reply = absl::StrCat("exit ", code, "\n", output, err);
  } else if (std::regex_search(
                 text, m,
                 std::regex(R"(create (?:a )?project (?:named |called )?([a-z][a-z0-9-]*))"))) {
    const std::string name = m[1];
    auto r = Orchestrator({"project", "create", name, "--json"}, printer, &calls);
    reply = r.exit_code == 0
                ? absl::StrCat("Created project ", name, " (", JsonField(r.out, "project.id"), ").")
                : absl::StrCat("I could not create project ", name, ": ", FirstLine(r.err));
  } else if (std::regex_search(text, m, std::regex(R"((?:list|show) (?:my )?projects)"))) {
    auto r = Orchestrator({"project", "list"}, printer, &calls);
    reply = r.exit_code == 0 ? "Your projects:\n" + r.out
                             : "I could not list your projects: " + FirstLine(r.err);
  } else if (std::regex_search(text, m, std::regex(R"(deploy ([a-z0-9_][a-z0-9_-]*))"))) {
    auto r = Orchestrator({"deploy", "trigger", m[1], "--json"}, printer, &calls);
    reply = r.exit_code == 0 ? absl::StrCat("Deploying; job ", JsonField(r.out, "job.id"), ".")
                             : "I could not deploy: " + FirstLine(r.err);
  } else if (std::regex_search(text, m, std::regex(R"((?:start|run) a demo job)"))) {
    auto r = Orchestrator(
        {"jobs", "demo", "demo.sleep", "--params", R"({"seconds":1,"steps":2})", "--json"}, printer,
        &calls);
    reply = r.exit_code == 0 ? absl::StrCat("Started job ", JsonField(r.out, "job.id"),
                                            "; I will tell you when it finishes.")
                             : "I could not start a job: " + FirstLine(r.err);
  } else if (std::regex_search(
                 text, m,
                 std::regex(R"(job (job_[a-z0-9]+)[^.]* (succeeded|failed|was cancelled))"))) {
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
        "I can create a project (\"create project NAME\"), list your projects, deploy one "
        "(\"deploy PROJECT\") and start a demo job.";
  }
  {
    std::ofstream log(dir / (id + ".log"), std::ios::app);
    log << "user: " << prompt << "\n"
        << "agent: " << FirstLine(reply) << "\n";
  }
  v1::AgentEvent said;
  said.mutable_text()->set_text(reply);
  printer.Event(said);
  v1::TaskResult result;
  result.set_status(v1::TASK_STATUS_SUCCEEDED);
  result.set_summary(reply);
  result.set_agent_session_id(id);
  result.mutable_usage()->set_turns(1 + calls);
  printer.Result(result);
  return 0;
}

}  // namespace orchestrator::agents
