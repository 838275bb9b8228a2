#include "clients/cli/app.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "clients/cli/follow.h"
#include "clients/cli/output.h"
#include "clients/cli/request.h"
#include "services/common/auth/origin_claim.h"
#include "services/common/auth/principal.h"
#include "services/common/commands/command.h"
#include "services/common/commands/format.h"
#include "services/common/commands/profiles.h"
#include "services/common/commands/skills.h"

namespace orchestrator::cli {

using commands::AllowedCommands;
using commands::Command;
using commands::Commands;
using commands::DurationText;
using commands::EnumLabel;
using commands::EnumLabels;
using commands::FindCommand;
using commands::FindProfile;
using commands::FormatMessage;
using commands::FormatPath;
using commands::Groups;
using commands::KeyValues;
using commands::Param;
using commands::Profile;
using commands::Profiles;
using commands::RenderKeyValues;
using commands::SkillsFormat;
using commands::WriteSkills;
using google::protobuf::Message;

namespace {

using google::protobuf::FieldDescriptor;

constexpr char kDefaultAddr[] = "127.0.0.1:50051";

const char kExitStatuses[] =
    "exit status:\n"
    "  0  ok\n"
    "  1  the followed job failed or was cancelled\n"
    "  2  usage error (unknown command or flag, bad value, missing --confirm)\n"
    "  3  server unreachable, or the deadline passed (UNAVAILABLE, DEADLINE_EXCEEDED)\n"
    "  4  not found (NOT_FOUND; another owner's resources are not found either)\n"
    "  5  not allowed (UNAUTHENTICATED, PERMISSION_DENIED)\n"
    "  6  request rejected (INVALID_ARGUMENT, FAILED_PRECONDITION, ALREADY_EXISTS, OUT_OF_RANGE,\n"
    "     ABORTED, RESOURCE_EXHAUSTED)\n"
    "  7  the server does not implement this RPC (UNIMPLEMENTED)\n"
    "  8  any other server error\n";

const char kGlobalFlags[] =
    "global flags (anywhere on the line):\n"
    "  --addr HOST:PORT|unix:PATH  the server (env ORCHESTRATOR_ADDR; default 127.0.0.1:50051)\n"
    "  --token TOKEN               bearer token (env ORCHESTRATOR_TOKEN)\n"
    "  --json                      protobuf JSON, one object per line, instead of tables\n"
    "  --timeout DURATION          deadline of each call, streams excepted (default 30s)\n"
    "  --give-up DURATION          how long `jobs watch` and --follow retry an unreachable server\n"
    "                              (default 5m)\n"
    "  --request-id ID             idempotency key of a mutation (default: a fresh one)\n"
    "  -h, --help                  help for the program, a group or a command\n";

struct Usage {
  std::string message;
  std::string help;  // what to print after it
};

struct Invocation {
  std::string addr, token, request_id;
  bool json = false, help = false, follow = false, confirm = false;
  absl::Duration timeout = absl::Seconds(30);
  absl::Duration give_up = absl::Minutes(5);
  std::vector<std::string> words;
  const Command* command = nullptr;
  std::string local;  // "skills export", "skills profiles"
  std::vector<std::pair<const Param*, std::string>> values;
  std::map<std::string, std::string> local_flags;
};

int ExitFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return kExitOk;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kExitUnavailable;
    case grpc::StatusCode::NOT_FOUND:
      return kExitNotFound;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return kExitDenied;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return kExitRejected;
    case grpc::StatusCode::UNIMPLEMENTED:
      return kExitUnimplemented;
    default:
      return kExitServerError;
  }
}

std::string CodeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

// --- help ----------------------------------------------------------------------

std::string Overview() {
  std::string out =
      "orchestrator: the command line of the codegen orchestrator\n\n"
      "usage: orchestrator GROUP COMMAND [ARGS] [FLAGS]\n"
      "       orchestrator GROUP --help      the group's commands\n\n"
      "groups:\n";
  for (const auto& g : Groups())
    absl::StrAppend(&out, "  ", absl::StrFormat("%-13s", g.name), g.summary, "\n");
  absl::StrAppend(&out, "\ncommands:\n");
  for (const auto& c : Commands()) {
    if (c.group.empty())
      absl::StrAppend(&out, "  ", absl::StrFormat("%-13s", c.name), c.summary, "\n");
  }
  absl::StrAppend(&out, "  ", absl::StrFormat("%-13s", "skills"),
                  "write the commands an agent may run as CLAUDE.md / AGENTS.md and skills\n\n",
                  kGlobalFlags, "\n", kExitStatuses);
  return out;
}

std::string GroupHelp(const std::string& group) {
  std::string summary;
  for (const auto& g : Groups()) {
    if (g.name == group) summary = g.summary;
  }
  std::string out = absl::StrCat("orchestrator ", group, ": ", summary, "\n\ncommands:\n");
  for (const auto& c : Commands()) {
    if (c.group == group)
      absl::StrAppend(&out, "  ", absl::StrFormat("%-14s", c.name), c.summary, "\n");
  }
  absl::StrAppend(&out, "\n'orchestrator ", group, " COMMAND --help' shows a command's usage.\n");
  return out;
}

std::string CommandHelp(const Command& c) {
  std::string out = absl::StrCat("usage: ", c.usage(), "\n\n", c.summary, "\n");
  if (!c.params.empty() || !c.job_id_path.empty() || c.needs_confirm) absl::StrAppend(&out, "\n");
  for (const auto& p : c.params) {
    std::string name = p.positional  ? p.name
                       : p.is_switch ? "--" + p.name
                                     : "--" + p.name + " VALUE";
    std::string help = p.help;
    const FieldDescriptor* f = nullptr;
    const auto* d = c.rpc.method->input_type();
    for (absl::string_view part : absl::StrSplit(p.field, '.')) {
      f = d == nullptr ? nullptr : d->FindFieldByName(std::string(part));
      d = f != nullptr ? f->message_type() : nullptr;
    }
    if (f != nullptr && f->enum_type() != nullptr) {
      absl::StrAppend(&help, " [", EnumLabels(f->enum_type()), "]");
    }
    if (p.required && !p.positional) absl::StrAppend(&help, " (required)");
    absl::StrAppend(&out, "  ", absl::StrFormat("%-24s", name), help, "\n");
  }
  if (!c.job_id_path.empty() && !c.rpc.streaming()) {
    absl::StrAppend(&out, "  ", absl::StrFormat("%-24s", "--follow"),
                    "stream the job's events until it ends; exit 0 if it succeeded, 1 if not\n");
  }
  if (c.needs_confirm) {
    absl::StrAppend(&out, "  ", absl::StrFormat("%-24s", "--confirm"),
                    "required: this cannot be undone\n");
  }
  if (!c.details.empty()) absl::StrAppend(&out, "\n", c.details, "\n");
  const std::string permission = c.permission();
  absl::StrAppend(&out, "\ncalls ", c.rpc_path(), "; ",
                  permission.empty() ? std::string("any valid token may")
                                     : absl::StrCat("needs permission '", permission, "'"),
                  "\n\n", kGlobalFlags);
  return out;
}

const char kSkillsHelp[] =
    "usage: orchestrator skills export (--allowed GRANTS | --profile NAME) "
    "--format claude|codex|agents --out DIR\n"
    "       orchestrator skills profiles\n\n"
    "export writes the commands a token with GRANTS may run, with their usage, for an agent:\n"
    "  --format claude  CLAUDE.md (its generated section) and the skills\n"
    "                   .claude/skills/orchestrator-GROUP/SKILL.md (Claude Code)\n"
    "  --format codex   AGENTS.md (its generated section) and the skills\n"
    "                   .agents/skills/orchestrator-GROUP/SKILL.md (Codex)\n"
    "  --format agents  AGENTS.md (its generated section, every command's usage inline)\n"
    "An existing instruction file keeps everything outside the generated section.\n"
    "GRANTS: comma-separated permissions, wildcards allowed ('deploy.*,project.get').\n"
    "profiles lists the named grant sets (PRODUCT_OWNER, DEVELOPER, DEVOPS).\n";

// --- parsing -------------------------------------------------------------------

bool IsGroup(const std::string& word) {
  for (const auto& g : Groups()) {
    if (g.name == word) return true;
  }
  return false;
}

// Resolves the command once its words are in.
void Resolve(Invocation* inv) {
  if (inv->command != nullptr || !inv->local.empty()) return;
  const auto& w = inv->words;
  if (w.size() == 1 && !IsGroup(w[0]) && w[0] != "skills") {
    inv->command = FindCommand("", w[0]);
  } else if (w.size() == 2 && IsGroup(w[0])) {
    inv->command = FindCommand(w[0], w[1]);
  } else if (w.size() == 2 && w[0] == "skills") {
    inv->local = "skills " + w[1];
  }
}

absl::StatusOr<Invocation> Parse(const std::vector<std::string>& args) {
  Invocation inv;
  bool words_only = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (words_only || a.empty() || a[0] != '-' || a == "-") {
      inv.words.push_back(a);
      Resolve(&inv);
      continue;
    }
    if (a == "--") {
      words_only = true;
      continue;
    }
    if (a == "-h" || a == "--help") {
      inv.help = true;
      continue;
    }
    if (!absl::StartsWith(a, "--")) return absl::InvalidArgumentError("unknown flag " + a);
    std::string name = a.substr(2), value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    auto take = [&]() -> absl::StatusOr<std::string> {
      if (has_value) return value;
      if (i + 1 >= args.size()) return absl::InvalidArgumentError("--" + name + " needs a value");
      return args[++i];
    };
    if (name == "json" || name == "follow" || name == "confirm") {
      bool* target = name == "json" ? &inv.json : name == "follow" ? &inv.follow : &inv.confirm;
      const Param* field_switch = nullptr;
      if (inv.command != nullptr) {
        for (const auto& p : inv.command->params) {
          if (p.is_switch && p.name == name) field_switch = &p;
        }
      }
      if (field_switch != nullptr) {
        inv.values.emplace_back(field_switch, "true");
      } else {
        *target = true;
      }
      continue;
    }
    if (name == "addr" || name == "token" || name == "timeout" || name == "request-id" ||
        name == "give-up") {
      auto v = take();
      if (!v.ok()) return v.status();
      if (name == "addr") inv.addr = *v;
      if (name == "token") inv.token = *v;
      if (name == "request-id") inv.request_id = *v;
      if (name == "timeout" &&
          (!ParseHumanDuration(*v, &inv.timeout) || inv.timeout <= absl::ZeroDuration())) {
        return absl::InvalidArgumentError(
            "--timeout: expected a duration such as 30s or 2m, got '" + *v + "'");
      }
      if (name == "give-up" &&
          (!ParseHumanDuration(*v, &inv.give_up) || inv.give_up <= absl::ZeroDuration())) {
        return absl::InvalidArgumentError("--give-up: expected a duration such as 5m or 1h, got '" +
                                          *v + "'");
      }
      continue;
    }
    if (!inv.local.empty()) {
      auto v = take();
      if (!v.ok()) return v.status();
      inv.local_flags[name] = *v;
      continue;
    }
    if (inv.command == nullptr) {
      return absl::InvalidArgumentError("unknown flag --" + name +
                                        " (a command's flags come after the command)");
    }
    const Param* param = nullptr;
    for (const auto& p : inv.command->params) {
      if (!p.positional && p.name == name) param = &p;
    }
    if (param == nullptr) return absl::InvalidArgumentError("unknown flag --" + name);
    if (param->is_switch) {
      inv.values.emplace_back(param, has_value ? value : "true");
      continue;
    }
    auto v = take();
    if (!v.ok()) return v.status();
    inv.values.emplace_back(param, *v);
  }
  return inv;
}

std::string NewRequestId() {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  absl::BitGen gen;
  std::string id = "cli-";
  for (int i = 0; i < 20; ++i) id += kAlphabet[absl::Uniform(gen, 0, 32)];
  return id;
}

// Inside an agent's task (ORCHESTRATOR_IDEMPOTENCY_KEY set): the same call
// in the same piece of work gets the same request id, so work run again
// after a restart repeats none of its calls. Otherwise a random one.
std::string RequestIdFor(const Command& c, const Message& request, const Environment& env) {
  auto key = env.vars.find("ORCHESTRATOR_IDEMPOTENCY_KEY");
  if (key == env.vars.end() || key->second.empty()) return NewRequestId();
  // FNV-1a: stable across processes and builds, unlike absl::Hash.
  uint64_t hash = 14695981039346656037ull;
  for (char ch : absl::StrCat(c.path(), "\n", request.ShortDebugString())) {
    hash = (hash ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
  }
  return absl::StrCat(key->second, ".", absl::Hex(hash, absl::kZeroPad16));
}

// Fills the request from the invocation; a usage error names the argument.
absl::Status BuildRequest(const Invocation& inv, const Environment& env, Message* request) {
  const Command& c = *inv.command;
  const absl::Time now = absl::Now();
  std::vector<std::pair<const Param*, std::string>> values;
  // Positionals, in order (words after the command's own).
  const size_t first = c.group.empty() ? 1 : 2;
  size_t next = first;
  for (const auto& p : c.params) {
    if (!p.positional) continue;
    if (next >= inv.words.size()) return absl::InvalidArgumentError("missing " + p.name);
    values.emplace_back(&p, inv.words[next++]);
  }
  if (next < inv.words.size()) {
    return absl::InvalidArgumentError("unexpected argument '" + inv.words[next] + "'");
  }
  values.insert(values.end(), inv.values.begin(), inv.values.end());
  for (const auto& p : c.params) {
    bool given = false;
    for (const auto& [q, v] : values) given |= q == &p;
    if (given) continue;
    if (p.stdin_if_absent && env.read_stdin) {
      std::string text = env.read_stdin();
      if (!text.empty() && text.back() == '\n') text.pop_back();
      if (text.empty()) {
        return absl::InvalidArgumentError("--" + p.name + " not given and standard input is empty");
      }
      values.emplace_back(&p, text);
    } else if (p.required) {
      return absl::InvalidArgumentError("missing --" + p.name);
    }
  }
  std::vector<std::string> mask;
  for (auto [p, v] : values) {
    if (p->from_file) {
      std::ifstream in(v);
      if (!in) return absl::InvalidArgumentError("--" + p->name + ": cannot read " + v);
      std::stringstream contents;
      contents << in.rdbuf();
      v = contents.str();
    }
    if (auto s = SetFromText(request, p->field, v, now, !p->one_item_each); !s.ok()) {
      const std::string name = p->positional ? p->name : "--" + p->name;
      return absl::InvalidArgumentError(absl::StrCat(name, ": ", s.message()));
    }
    if (!p->positional && absl::StrContains(p->field, '.')) {
      mask.push_back(
          std::string(absl::StripPrefix(p->field, p->field.substr(0, p->field.find('.') + 1))));
    }
  }
  const auto* d = request->GetDescriptor();
  const auto* r = request->GetReflection();
  if (const FieldDescriptor* f = d->FindFieldByName("update_mask"); f != nullptr) {
    if (mask.empty()) {
      return absl::InvalidArgumentError("nothing to change: give at least one field's flag");
    }
    for (const auto& path : mask) SetFromText(request, "update_mask", path, now).IgnoreError();
  }
  if (const FieldDescriptor* f = d->FindFieldByName("confirm"); f != nullptr && inv.confirm) {
    r->SetBool(request, f, true);
  }
  if (const FieldDescriptor* f = d->FindFieldByName("request_id");
      f != nullptr && f->type() == FieldDescriptor::TYPE_STRING &&
      r->GetString(*request, f).empty()) {
    r->SetString(request, f,
                 inv.request_id.empty() ? RequestIdFor(c, *request, env) : inv.request_id);
  }
  return absl::OkStatus();
}

// --- errors ------------------------------------------------------------------

// True when the server itself answered the call (its interceptor echoes
// the request id, in the initial or, for an early error, the trailing
// metadata): an UNAVAILABLE then is the server's word about something it
// could not reach, not a sign that nothing listens at the address.
bool ServerAnswered(const grpc::ClientContext& ctx) {
  constexpr char kRequestIdHeader[] = "x-request-id";
  return ctx.GetServerInitialMetadata().count(kRequestIdHeader) > 0 ||
         ctx.GetServerTrailingMetadata().count(kRequestIdHeader) > 0;
}

void PrintError(const grpc::Status& s, const Command* c, const std::string& addr, std::ostream& err,
                bool server_answered = false) {
  err << "error: " << CodeName(s.error_code())
      << (s.error_message().empty() ? "" : ": " + s.error_message()) << "\n";
  switch (s.error_code()) {
    case grpc::StatusCode::PERMISSION_DENIED:
      if (c != nullptr && !c->permission().empty()) {
        err << "  'orchestrator " << c->path() << "' needs permission '" << c->permission()
            << "', which this token does not grant\n";
      }
      break;
    case grpc::StatusCode::UNAUTHENTICATED:
      err << "  give a valid token with --token or ORCHESTRATOR_TOKEN\n";
      break;
    case grpc::StatusCode::UNAVAILABLE:
      if (!server_answered) {
        err << "  is orchestratord running at " << addr
            << "? (choose the server with --addr or ORCHESTRATOR_ADDR)\n";
      }
      break;
    case grpc::StatusCode::UNIMPLEMENTED:
      if (c != nullptr) {
        err << "  the server at " << addr << " does not implement " << c->rpc_path()
            << " (its component is not built yet, or not hosted there)\n";
      }
      break;
    default:
      break;
  }
}

int Outcome(const FollowResult& result, const Command* c, const std::string& addr, bool json,
            std::ostream& out, std::ostream& err) {
  if (!result.status.ok()) {
    PrintError(result.status, c, addr, err);
    return ExitFor(result.status.error_code());
  }
  const auto& job = result.job;
  const std::string state =
      EnumLabel(jobs_v1::JobState_descriptor()->FindValueByNumber(job.state()));
  std::string took;
  if (job.has_start_time() && job.has_end_time()) {
    took =
        " in " + DurationText(absl::Seconds(job.end_time().seconds() - job.start_time().seconds()) +
                              absl::Nanoseconds(job.end_time().nanos() - job.start_time().nanos()));
  }
  if (job.state() == jobs_v1::JOB_STATE_SUCCEEDED) {
    if (!json) out << "job " << job.id() << " succeeded" << took << "\n";
    return kExitOk;
  }
  std::string why = job.has_error() ? ": " + FormatMessage(job.error(), absl::Now(), true) : "";
  err << "job " << job.id() << " " << state << took << why << "\n";
  return kExitJobFailed;
}

// What a usage error shows of a command: its usage line and where the rest is.
std::string ShortUsage(const Command& c) {
  return absl::StrCat("usage: ", c.usage(), "\n('orchestrator ", c.path(),
                      " --help' explains each argument)\n");
}

int Usage(const std::string& message, const std::string& help, std::ostream& err) {
  err << "orchestrator: " << message << "\n";
  if (!help.empty()) err << "\n" << help;
  return kExitUsage;
}

int RunSkills(const Invocation& inv, std::ostream& out, std::ostream& err) {
  if (inv.help) {
    out << kSkillsHelp;
    return kExitOk;
  }
  if (inv.local == "skills profiles") {
    for (const auto& p : Profiles()) {
      out << p.name << ": " << p.summary << "\n  " << absl::StrJoin(p.grants, ",") << "\n";
    }
    return kExitOk;
  }
  if (inv.local != "skills export")
    return Usage("unknown command '" + inv.local + "'", kSkillsHelp, err);
  for (const auto& [name, value] : inv.local_flags) {
    if (name != "allowed" && name != "profile" && name != "format" && name != "out") {
      return Usage("unknown flag --" + name, kSkillsHelp, err);
    }
  }
  auto flag = [&](const std::string& name) {
    auto it = inv.local_flags.find(name);
    return it == inv.local_flags.end() ? std::string() : it->second;
  };
  std::vector<std::string> grants;
  if (!flag("allowed").empty() && !flag("profile").empty()) {
    return Usage("give --allowed or --profile, not both", kSkillsHelp, err);
  }
  if (!flag("profile").empty()) {
    const Profile* p = FindProfile(flag("profile"));
    if (p == nullptr) {
      std::vector<std::string> names;
      for (const auto& q : Profiles()) names.push_back(q.name);
      return Usage(
          "--profile: '" + flag("profile") + "' is not one of: " + absl::StrJoin(names, ", "), "",
          err);
    }
    grants = p->grants;
  } else if (!flag("allowed").empty()) {
    for (absl::string_view g : absl::StrSplit(flag("allowed"), ',', absl::SkipWhitespace())) {
      grants.emplace_back(absl::StripAsciiWhitespace(g));
      if (!IsValidPermissionPattern(grants.back())) {
        return Usage("--allowed: '" + grants.back() +
                         "' is not a permission (lower-case words with dots, optionally ending .*)",
                     "", err);
      }
    }
  } else {
    return Usage("missing --allowed or --profile", kSkillsHelp, err);
  }
  SkillsFormat format;
  if (flag("format") == "claude") {
    format = SkillsFormat::kClaude;
  } else if (flag("format") == "codex") {
    format = SkillsFormat::kCodex;
  } else if (flag("format") == "agents") {
    format = SkillsFormat::kAgents;
  } else {
    return Usage("--format: expected claude, codex or agents", kSkillsHelp, err);
  }
  if (flag("out").empty()) return Usage("missing --out DIR", kSkillsHelp, err);
  auto written = WriteSkills(flag("out"), grants, format);
  if (!written.ok()) {
    err << "error: " << written.status().message() << "\n";
    return kExitServerError;
  }
  for (const auto& path : *written) out << "wrote " << path << "\n";
  out << AllowedCommands(grants).size() << " commands allowed\n";
  return kExitOk;
}

}  // namespace

int Run(const std::vector<std::string>& args, const Environment& env, std::ostream& out,
        std::ostream& err) {
  auto parsed = Parse(args);
  if (!parsed.ok()) {
    // Name the command if we got that far, and show its usage.
    Invocation partial;
    for (const auto& a : args) {
      if (a.empty() || a[0] == '-') break;
      partial.words.push_back(a);
      Resolve(&partial);
    }
    const std::string help = partial.command != nullptr ? ShortUsage(*partial.command)
                             : !partial.local.empty()   ? std::string(kSkillsHelp)
                                                        : std::string();
    return Usage(std::string(parsed.status().message()), help, err);
  }
  Invocation& inv = *parsed;
  if (!inv.local.empty() || (!inv.words.empty() && inv.words[0] == "skills")) {
    if (inv.local.empty() && !inv.help)
      return Usage("missing command after 'skills'", kSkillsHelp, err);
    if (inv.local.empty()) {
      out << kSkillsHelp;
      return kExitOk;
    }
    return RunSkills(inv, out, err);
  }
  if (inv.command == nullptr) {
    if (inv.words.empty() || (inv.words[0] == "help" && inv.words.size() == 1)) {
      if (inv.help || !inv.words.empty()) {
        out << Overview();
        return kExitOk;
      }
      return Usage("missing command", Overview(), err);
    }
    if (IsGroup(inv.words[0])) {
      if (inv.words.size() == 1) {
        if (inv.help) {
          out << GroupHelp(inv.words[0]);
          return kExitOk;
        }
        return Usage("missing command after '" + inv.words[0] + "'", GroupHelp(inv.words[0]), err);
      }
      return Usage("unknown command '" + inv.words[0] + " " + inv.words[1] + "'",
                   GroupHelp(inv.words[0]), err);
    }
    return Usage("unknown command '" + inv.words[0] + "' (see orchestrator --help)", "", err);
  }
  const Command& c = *inv.command;
  if (inv.help) {
    out << CommandHelp(c);
    return kExitOk;
  }
  if (inv.follow && (c.job_id_path.empty() || c.rpc.streaming())) {
    return Usage("--follow: 'orchestrator " + c.path() + "' starts no job to follow", ShortUsage(c),
                 err);
  }
  if (inv.confirm && !c.needs_confirm) {
    return Usage("--confirm: 'orchestrator " + c.path() + "' does not take it", ShortUsage(c), err);
  }
  if (c.needs_confirm && !inv.confirm) {
    return Usage("refusing without --confirm: '" + c.summary + "' cannot be undone", ShortUsage(c),
                 err);
  }
  auto request = c.rpc.new_request();
  if (auto s = BuildRequest(inv, env, request.get()); !s.ok()) {
    return Usage(std::string(s.message()), ShortUsage(c), err);
  }

  auto var = [&env](const char* name) {
    auto it = env.vars.find(name);
    return it == env.vars.end() ? std::string() : it->second;
  };
  const std::string addr = !inv.addr.empty()                   ? inv.addr
                           : !var("ORCHESTRATOR_ADDR").empty() ? var("ORCHESTRATOR_ADDR")
                                                               : kDefaultAddr;
  const std::string token = !inv.token.empty() ? inv.token : var("ORCHESTRATOR_TOKEN");
  // Inside an agent's task: what started the task, so the jobs this call
  // starts record their lineage.
  const std::string origin = var(kOriginEnvironment);
  auto channel = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
  const absl::Duration timeout = inv.timeout;
  auto context = [&token, &origin, timeout](bool deadline) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    if (!origin.empty()) ctx->AddMetadata(std::string(kOriginHeader), origin);
    if (deadline) ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    return ctx;
  };

  if (c.rpc.streaming() && !c.job_id_path.empty()) {
    // jobs watch: the job's events to its end, resuming if the stream breaks.
    int64_t after = 0;
    (void)absl::SimpleAtoi(FormatPath(*request, "after_sequence", absl::Now(), false), &after);
    auto result =
        FollowJob(channel, context, FormatPath(*request, c.job_id_path, absl::Now(), false), after,
                  inv.json, inv.give_up, out, err);
    return Outcome(result, &c, addr, inv.json, out, err);
  }
  if (c.rpc.streaming()) {
    auto ctx = context(false);
    grpc::Status status = c.rpc.stream(channel, ctx.get(), *request, [&](const Message& m) {
      if (inv.json) {
        out << Json(m) << "\n";
      } else if (c.line) {
        out << c.line(m, absl::Now());
      } else {
        out << RenderKeyValues(KeyValues(m, absl::Now())) << "\n";
      }
      out.flush();
      return true;
    });
    if (!status.ok()) {
      PrintError(status, &c, addr, err, ServerAnswered(*ctx));
      return ExitFor(status.error_code());
    }
    return kExitOk;
  }
  auto response = c.rpc.new_response();
  auto ctx = context(true);
  grpc::Status status = c.rpc.unary(channel, ctx.get(), *request, response.get());
  if (!status.ok()) {
    PrintError(status, &c, addr, err, ServerAnswered(*ctx));
    return ExitFor(status.error_code());
  }
  if (!(inv.follow && c.follow_replaces_answer)) {
    if (inv.json) {
      out << Json(*response) << "\n";
    } else {
      PrintResponse(c, *response, absl::Now(), out, err);
    }
  }
  if (!inv.follow) return kExitOk;
  const std::string job_id = FormatPath(*response, c.job_id_path, absl::Now(), false);
  if (job_id.empty()) {
    err << "orchestrator: the answer names no job to follow\n";
    return kExitServerError;
  }
  if (!inv.json) {
    out << (c.follow_replaces_answer ? "" : "\n") << "following job " << job_id
        << " (Ctrl-C stops watching, not the job)\n";
  }
  out.flush();
  return Outcome(FollowJob(channel, context, job_id, 0, inv.json, inv.give_up, out, err), &c, addr,
                 inv.json, out, err);
}

}  // namespace orchestrator::cli
