#include "services/agents/runner/scripted_chain.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <filesystem>
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
// The state's key of what the chain said when a job ended.
constexpr char kToldPrefix[] = "told:";

// What the user asks for: a name as the platform takes it, and a text a
// template's answer may be (one line of printable characters, no quotes or
// backslashes: it goes into the service's source between quotes). Tried
// only on short prompts, trimmed of trailing spaces and a final '.', so
// that no prompt makes the matching slow.
constexpr size_t kMaxRequestBytes = 1024;
const std::regex& BuildRequest() {
  static const std::regex kPattern(
      R"re(build an? (python|node) (?:service|app|api) (?:called|named) ([a-z][a-z0-9-]{0,62}) that (?:answers|says|serves) "?([^\x00-\x1f\x7f"\\]{1,200})"?$)re",
      std::regex::icase);
  return kPattern;
}
const std::regex& ChangeRequest() {
  static const std::regex kPattern(
      R"re(change (?:the |its )?(?:text|greeting|answer) to "?([^\x00-\x1f\x7f"\\]{1,200})"?$)re",
      std::regex::icase);
  return kPattern;
}
// The platform's turn when a job ended (sessions' job-end message): its
// first words only; the outcome is asked of the platform, never read here.
const std::regex& JobEnded() {
  static const std::regex kPattern(R"(^Job (job_[a-z0-9]{1,64}) that you started )");
  return kPattern;
}
// The platform's turn when a job it started on its own ended (a rollback, a
// fix after a failed deploy, its engineering run and redeploy).
const std::regex& PlatformJobEnded() {
  static const std::regex kPattern(
      R"(^The platform started [a-z.]{1,64} job (job_[a-z0-9]{1,64}) on its own)");
  return kPattern;
}
// The prompt as a request: trailing spaces and one final '.' off; "" when
// too long to be one.
std::string AsRequest(const std::string& prompt) {
  if (prompt.size() > kMaxRequestBytes) return "";
  absl::string_view text = absl::StripTrailingAsciiWhitespace(prompt);
  absl::ConsumeSuffix(&text, ".");
  return std::string(absl::StripTrailingAsciiWhitespace(text));
}

std::string Field(const Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  return it == s.fields().end() ? "" : it->second.string_value();
}
void Set(Struct& s, const std::string& key, const std::string& value) {
  (*s.mutable_fields())[key].set_string_value(value);
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
// Written whole or not at all (a turn killed midway leaves the last state).
void Save(const std::string& file, const Struct& state) {
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(state, &json);
  const std::string next = file + ".next";
  {
    std::ofstream out(next, std::ios::trunc);
    out << json;
    if (!out.flush()) return;
  }
  std::error_code ec;
  std::filesystem::rename(next, file, ec);
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
    if (auto busy = StillBusy()) return *busy;
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
    if (Field(state, "project").empty()) {
      return Stop(state, absl::StrCat("Creating project ", name, " answered no project id."));
    }
    const std::string template_id = language == "node" ? "node-http" : "python-http";
    auto scaffolded = cli_({"scaffold", "run", Field(state, "project"), "--template", template_id,
                            "--answer", absl::StrCat("service_title=", name), "--json"});
    if (auto stopped = Started(state, kScaffold, scaffolded,
                               absl::StrCat("I created project ", Field(state, "project"),
                                            " but could not scaffold it"))) {
      return *stopped;
    }
    return absl::StrCat("Building ", name, ": project ", Field(state, "project"),
                        " created; scaffolding it from ", template_id, " (job ",
                        Field(state, "job"), "). I will tell you at each step.");
  }

  std::optional<std::string> Change(const std::string& text) {
    if (auto busy = StillBusy()) return *busy;
    auto state = Load(file_);
    if (!state) return std::nullopt;
    // Live, or stopped by a failed step: the project is there to change.
    if (Field(*state, "project").empty()) {
      return absl::StrCat(Field(*state, "name"), " has no project yet; build it first.");
    }
    Set(*state, "text", text);
    return Engineer(*state);
  }

  // The platform's own job `job_id` ended; nullopt when it is not of the
  // chain's project. A fix after the chain's failed deploy is followed to
  // its redeploy; what happened is asked of the platform.
  std::optional<std::string> PlatformJobEnded(const std::string& job_id) {
    auto state = Load(file_);
    if (!state || Field(*state, "project").empty()) return std::nullopt;
    if (auto told = Field(*state, absl::StrCat(kToldPrefix, job_id)); !told.empty()) return told;
    return Told(job_id, PlatformNews(*state, job_id));
  }

 private:
  // What the chain said of `job_id`'s end, kept for a turn run again.
  std::optional<std::string> Told(const std::string& job_id, std::optional<std::string> said) {
    if (!said) return said;
    auto state = Load(file_);  // as the step left it
    if (state) {
      Set(*state, absl::StrCat(kToldPrefix, job_id), *said);
      Save(file_, *state);
    }
    return said;
  }

  std::optional<std::string> PlatformNews(Struct& state_in, const std::string& job_id) {
    Struct* state = &state_in;
    auto job = cli_({"jobs", "get", job_id, "--json"});
    if (job.exit_code != 0 || JsonPath(job.out, "job.project_id") != Field(*state, "project")) {
      return std::nullopt;
    }
    const std::string kind = JsonPath(job.out, "job.kind");
    const std::string ended = JsonPath(job.out, "job.state");
    if (ended != "JOB_STATE_SUCCEEDED" && ended != "JOB_STATE_FAILED" &&
        ended != "JOB_STATE_CANCELLED") {
      return std::nullopt;
    }
    const bool ok = ended == "JOB_STATE_SUCCEEDED";
    const std::string why = FirstLine(JsonPath(job.out, "job.error.message"));
    const std::string name = Field(*state, "name");
    const std::string commit = JsonPath(job.out, "job.result.commit_sha").substr(0, 12);
    const std::string still =
        Field(*state, "url").empty()
            ? ""
            : absl::StrCat(" ", name, " is still live at ", Field(*state, "url"), ".");
    if (kind == "engineering") {
      return ok ? absl::StrCat("A coding agent's fix for ", name, " passed its tests (commit ",
                               commit, ").")
                : absl::StrCat("A coding agent could not fix ", name, " (job ", job_id, "): ", why);
    }
    if (kind == "deploy.fix") {
      if (!ok) {
        return Stop(*state, absl::StrCat("The platform could not fix ", name,
                                         "'s failed deploy (job ", job_id, "): ", why));
      }
      const std::string redeploy = JsonPath(job.out, "job.result.deploy_job_id");
      Advance(*state, kDeploy, redeploy);
      return absl::StrCat("The platform is deploying the fix of ", name, " (commit ", commit,
                          ", job ", redeploy, ").");
    }
    if (kind == kDeploy && Field(*state, "job") == job_id) {
      if (!ok) {
        return Stop(*state, absl::StrCat("The deploy of ", name, "'s fix failed too (job ", job_id,
                                         "): ", why, still));
      }
      const std::string url = JsonPath(job.out, "job.result.url");
      // The fix undid the change that failed: the greeting is the one that
      // was live before it.
      Set(*state, "greeting", Field(*state, "live_greeting"));
      Set(*state, "text", Field(*state, "live_greeting"));
      Set(*state, "url", url);
      Advance(*state, kLive, "");
      return absl::StrCat(name, " is live again at ", url, " with the fix, answering \"",
                          Field(*state, "greeting"), "\" as before the change that failed.");
    }
    if (kind == "rollback") {
      return ok ? absl::StrCat("The platform rolled ", name,
                               " back to its previous release: the new one failed its health "
                               "checks.")
                : absl::StrCat("The platform could not roll ", name, " back (job ", job_id,
                               "): ", why);
    }
    return absl::StrCat("The platform's ", kind, " job ", job_id, " for ", name,
                        ok ? " succeeded." : absl::StrCat(" failed: ", why));
  }

 public:
  // The platform's turn about `job_id`; nullopt when it is not the chain's
  // current job or the job has not ended. What happened is asked of the
  // platform (`jobs get`): the words of a message are no proof.
  std::optional<std::string> JobEnded(const std::string& job_id) {
    auto state = Load(file_);
    if (!state) return std::nullopt;
    // A turn run again after a restart cut it off says what it said.
    if (auto told = Field(*state, absl::StrCat(kToldPrefix, job_id)); !told.empty()) return told;
    if (Field(*state, "job") != job_id || !Busy(*state)) return std::nullopt;
    return Told(job_id, Next(*state));
  }

 private:
  static bool Busy(const Struct& state) {
    const std::string step = Field(state, "step");
    return step == kScaffold || step == kEngineering || step == kDeploy;
  }

  // While a step runs, the user is told so; a step whose job ended without
  // its news reaching this session (a turn that failed, a new session) is
  // taken up now.
  std::optional<std::string> StillBusy() {
    auto state = Load(file_);
    if (!state || !Busy(*state)) return std::nullopt;
    if (auto next = Next(*state)) return absl::StrCat(*next, " (Ask again once it is live.)");
    return absl::StrCat("I am still building ", Field(*state, "name"), " (", Field(*state, "step"),
                        "); I will tell you when it is live.");
  }

  // The step after the current job ended; nullopt while it runs.
  std::optional<std::string> Next(Struct& state) {
    const std::string job_id = Field(state, "job");
    const std::string step = Field(state, "step");
    auto job = cli_({"jobs", "get", job_id, "--json"});
    const std::string ended = JsonPath(job.out, "job.state");
    if (job.exit_code != 0 || ended.empty()) {
      return absl::StrCat("I could not look up job ", job_id, ": ", FirstLine(job.err));
    }
    if (ended != "JOB_STATE_SUCCEEDED" && ended != "JOB_STATE_FAILED" &&
        ended != "JOB_STATE_CANCELLED") {
      return std::nullopt;
    }
    if (ended != "JOB_STATE_SUCCEEDED") {
      const std::string why = FirstLine(JsonPath(job.out, "job.error.message"));
      return Stop(state,
                  absl::StrCat("The ", step, " step of ", Field(state, "name"),
                               ended == "JOB_STATE_FAILED" ? " failed" : " was cancelled", " (job ",
                               job_id, ")", why.empty() ? "." : absl::StrCat(": ", why)));
    }
    const std::string commit = JsonPath(job.out, "job.result.commit_sha").substr(0, 12);
    if (step == kScaffold) {
      return absl::StrCat("Scaffolded ", Field(state, "name"), " (commit ", commit, "). ",
                          Engineer(state));
    }
    if (step == kEngineering) {
      Set(state, "greeting", Field(state, "text"));
      auto deployed = cli_({"deploy", "trigger", Field(state, "project"), "--json"});
      if (auto stopped = Started(state, kDeploy, deployed,
                                 "The change was pushed but I could not deploy it")) {
        return *stopped;
      }
      return absl::StrCat("The change passed its tests and was pushed (commit ", commit,
                          "). Deploying it (job ", Field(state, "job"), ").");
    }
    const std::string url = JsonPath(job.out, "job.result.url");
    if (url.empty()) return Stop(state, "The deploy succeeded but named no URL.");
    Set(state, "url", url);
    Set(state, "live_greeting", Field(state, "greeting"));
    Advance(state, kLive, "");
    return absl::StrCat(Field(state, "name"), " is live at ", url, " and answers \"",
                        Field(state, "text"), "\".");
  }

  // `step` started by `ran` (its job's id in its JSON), or the chain
  // stopped saying why (`what`: what could not be done).
  std::optional<std::string> Started(Struct& state, const std::string& step, const CliOutput& ran,
                                     const std::string& what) {
    const std::string job = ran.exit_code == 0 ? JsonPath(ran.out, "job.id") : "";
    if (job.empty()) {
      return Stop(
          state,
          absl::StrCat(what, ": ", ran.exit_code == 0 ? "no job was started" : FirstLine(ran.err)));
    }
    Advance(state, step, job);
    return std::nullopt;
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
    if (auto stopped = Started(state, kEngineering, run, "I could not start the change")) {
      return *stopped;
    }
    return absl::StrCat("A coding agent is making it answer \"", Field(state, "text"), "\" (job ",
                        Field(state, "job"), ").");
  }

  const std::string file_;
  const RunCli& cli_;
};

}  // namespace

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

std::optional<std::string> RunChainTurn(const std::string& prompt, const std::string& state_file,
                                        const RunCli& cli) {
  Chain chain(state_file, cli);
  std::smatch m;
  // The platform's news first: its quoted error must not read as a request.
  if (std::regex_search(prompt, m, JobEnded())) return chain.JobEnded(m[1]);
  if (std::regex_search(prompt, m, PlatformJobEnded())) return chain.PlatformJobEnded(m[1]);
  const std::string request = AsRequest(prompt);
  if (std::regex_search(request, m, BuildRequest())) {
    std::string language = m[1];
    std::string name = m[2];
    for (auto* s : {&language, &name}) {
      for (char& c : *s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return chain.Build(language, name, std::string(absl::StripAsciiWhitespace(m[3].str())));
  }
  if (std::regex_search(request, m, ChangeRequest())) {
    return chain.Change(std::string(absl::StripAsciiWhitespace(m[1].str())));
  }
  return std::nullopt;
}

}  // namespace orchestrator::agents
