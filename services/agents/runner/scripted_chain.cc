#include "services/agents/runner/scripted_chain.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace orchestrator::agents {
namespace {

using google::protobuf::Struct;

// The chain's steps, in order.
constexpr char kScaffold[] = "scaffold";
constexpr char kEngineering[] = "engineering";
constexpr char kDeploy[] = "deploy";
constexpr char kLive[] = "live";
constexpr char kStopped[] = "stopped";

// What the user asks for: a name as the platform takes it, and a text a
// template's answer may be (one line, no quotes or backslashes).
const std::regex& BuildRequest() {
  static const std::regex kPattern(
      R"re(build an? (python|node) (?:service|app|api) (?:called|named) ([a-z][a-z0-9-]{0,62}) that (?:answers|says|serves) "?([^"\\\n]{1,200}?)"?\s*\.?\s*$)re",
      std::regex::icase);
  return kPattern;
}
const std::regex& ChangeRequest() {
  static const std::regex kPattern(
      R"re(change (?:the |its )?(?:text|greeting|answer) to "?([^"\\\n]{1,200}?)"?\s*\.?\s*$)re",
      std::regex::icase);
  return kPattern;
}
// The platform's turn when a job ended (sessions' job-end message).
const std::regex& JobEnded() {
  static const std::regex kPattern(R"(job (job_[a-z0-9]+)[^.]* (succeeded|failed|was cancelled))",
                                   std::regex::icase);
  return kPattern;
}

std::string Field(const Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  return it == s.fields().end() ? "" : it->second.string_value();
}
void Set(Struct& s, const std::string& key, const std::string& value) {
  (*s.mutable_fields())[key].set_string_value(value);
}

// A dotted path's string in a JSON object ("" when absent).
std::string JsonPath(const std::string& json, const std::string& path) {
  Struct s;
  if (!google::protobuf::util::JsonStringToMessage(json, &s).ok()) return "";
  const Struct* at = &s;
  std::stringstream parts(path);
  std::string key;
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

std::string FirstLine(const std::string& text) {
  return std::string(absl::StripAsciiWhitespace(text.substr(0, text.find('\n'))));
}

std::optional<Struct> Load(const std::string& file) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  Struct state;
  if (!google::protobuf::util::JsonStringToMessage(text.str(), &state).ok()) return std::nullopt;
  return state;
}
void Save(const std::string& file, const Struct& state) {
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(state, &json);
  std::ofstream(file, std::ios::trunc) << json;
}

// The engineering task: the user's words, and the steps the scripted
// developer agent takes (the greeting made `to`).
std::string EngineeringTask(const Struct& state, const std::string& to) {
  const std::string file = Field(state, "language") == "node" ? "repo/server.js" : "repo/app.py";
  Struct steps;
  auto& list = *(*steps.mutable_fields())["steps"].mutable_list_value();
  Struct replace;
  Set(replace, "replace", file);
  Set(replace, "old", absl::StrCat("GREETING = \"", Field(state, "greeting"), "\""));
  Set(replace, "new", absl::StrCat("GREETING = \"", to, "\""));
  *list.add_values()->mutable_struct_value() = replace;
  Struct say;
  Set(say, "say", absl::StrCat("The service now answers \"", to, "\"."));
  *list.add_values()->mutable_struct_value() = say;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(steps, &json);
  return absl::StrCat("Make ", Field(state, "name"), " answer \"", to, "\" (its greeting).\n",
                      "```orchestrator-steps\n", json, "\n```\n");
}

class Chain {
 public:
  Chain(std::string file, const RunCli& cli) : file_(std::move(file)), cli_(cli) {}

  std::string Build(const std::string& language, const std::string& name, const std::string& text) {
    if (auto state = Load(file_); state && Busy(*state)) {
      return absl::StrCat("I am still building ", Field(*state, "name"), " (",
                          Field(*state, "step"), "); I will tell you when it is live.");
    }
    auto created = cli_({"project", "create", name, "--json"});
    if (created.exit_code != 0) {
      return absl::StrCat("I could not create project ", name, ": ", FirstLine(created.err));
    }
    Struct state;
    Set(state, "name", name);
    Set(state, "language", language);
    Set(state, "project", JsonPath(created.out, "project.id"));
    Set(state, "text", text);
    Set(state, "greeting", absl::StrCat("Hello from ", name, "!"));  // the template's default
    const std::string template_id = language == "node" ? "node-http" : "python-http";
    auto scaffolded = cli_({"scaffold", "run", Field(state, "project"), "--template", template_id,
                            "--answer", absl::StrCat("service_title=", name), "--json"});
    if (scaffolded.exit_code != 0) {
      return Stop(state, absl::StrCat("I created project ", Field(state, "project"),
                                      " but could not scaffold it: ", FirstLine(scaffolded.err)));
    }
    Advance(state, kScaffold, JsonPath(scaffolded.out, "job.id"));
    return absl::StrCat("Building ", name, ": project ", Field(state, "project"),
                        " created; scaffolding it from ", template_id, " (job ",
                        Field(state, "job"), "). I will tell you at each step.");
  }

  std::optional<std::string> Change(const std::string& text) {
    auto state = Load(file_);
    if (!state) return std::nullopt;
    if (Busy(*state)) {
      return absl::StrCat("I am still building ", Field(*state, "name"), " (",
                          Field(*state, "step"), "); ask again once it is live.");
    }
    if (Field(*state, "step") != kLive) {
      return absl::StrCat(Field(*state, "name"), " is not live; build it again first.");
    }
    Set(*state, "text", text);
    return Engineer(*state);
  }

  // The platform's turn about `job_id`; nullopt when it is not the chain's.
  std::optional<std::string> JobEnded(const std::string& job_id, const std::string& outcome) {
    auto state = Load(file_);
    if (!state || Field(*state, "job") != job_id || !Busy(*state)) return std::nullopt;
    const std::string step = Field(*state, "step");
    auto job = cli_({"jobs", "get", job_id, "--json"});
    if (outcome != "succeeded") {
      const std::string why = FirstLine(JsonPath(job.out, "job.error.message"));
      return Stop(*state,
                  absl::StrCat("The ", step, " step of ", Field(*state, "name"), " ", outcome,
                               " (job ", job_id, ")", why.empty() ? "." : absl::StrCat(": ", why)));
    }
    if (step == kScaffold) {
      return absl::StrCat("Scaffolded ", Field(*state, "name"), " (commit ",
                          JsonPath(job.out, "job.result.commit_sha").substr(0, 12), "). ",
                          Engineer(*state));
    }
    if (step == kEngineering) {
      Set(*state, "greeting", Field(*state, "text"));
      auto deployed = cli_({"deploy", "trigger", Field(*state, "project"), "--json"});
      if (deployed.exit_code != 0) {
        return Stop(*state, absl::StrCat("The change was pushed but I could not deploy it: ",
                                         FirstLine(deployed.err)));
      }
      Advance(*state, kDeploy, JsonPath(deployed.out, "job.id"));
      return absl::StrCat("The change passed its tests and was pushed (commit ",
                          JsonPath(job.out, "job.result.commit_sha").substr(0, 12),
                          "). Deploying it (job ", Field(*state, "job"), ").");
    }
    const std::string url = JsonPath(job.out, "job.result.url");
    Set(*state, "url", url);
    Advance(*state, kLive, "");
    return absl::StrCat(Field(*state, "name"), " is live at ", url, " and answers \"",
                        Field(*state, "text"), "\".");
  }

 private:
  static bool Busy(const Struct& state) {
    const std::string step = Field(state, "step");
    return step == kScaffold || step == kEngineering || step == kDeploy;
  }
  void Advance(Struct& state, const std::string& step, const std::string& job) {
    Set(state, "step", step);
    Set(state, "job", job);
    Save(file_, state);
  }
  std::string Stop(Struct& state, std::string why) {
    Advance(state, kStopped, "");
    return why;
  }
  std::string Engineer(Struct& state) {
    auto run =
        cli_({"engineering", "trigger", Field(state, "project"),
              EngineeringTask(state, Field(state, "text")), "--agent", "scripted", "--json"});
    if (run.exit_code != 0) {
      return Stop(state, absl::StrCat("I could not start the change: ", FirstLine(run.err)));
    }
    Advance(state, kEngineering, JsonPath(run.out, "job.id"));
    return absl::StrCat("A coding agent is making it answer \"", Field(state, "text"), "\" (job ",
                        Field(state, "job"), ").");
  }

  const std::string file_;
  const RunCli& cli_;
};

}  // namespace

std::optional<std::string> RunChainTurn(const std::string& prompt, const std::string& state_file,
                                        const RunCli& cli) {
  Chain chain(state_file, cli);
  std::smatch m;
  if (std::regex_search(prompt, m, BuildRequest())) {
    std::string language = m[1];
    std::string name = m[2];
    for (auto* s : {&language, &name}) {
      for (char& c : *s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return chain.Build(language, name, std::string(absl::StripAsciiWhitespace(m[3].str())));
  }
  if (std::regex_search(prompt, m, ChangeRequest())) {
    return chain.Change(std::string(absl::StripAsciiWhitespace(m[1].str())));
  }
  if (std::regex_search(prompt, m, JobEnded())) {
    std::string outcome = m[2];
    for (char& c : outcome) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return chain.JobEnded(m[1], outcome);
  }
  return std::nullopt;
}

}  // namespace orchestrator::agents
