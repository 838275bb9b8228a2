#include "services/agents/runner/scripted_steps.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "services/common/process/child_process.h"

namespace orchestrator::agents {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxToolOutput = 64 * 1024;  // ToolResult.output's bound
// A file larger than this is not read into memory to be edited.
constexpr uintmax_t kMaxEditedFile = 64 * 1024 * 1024;
constexpr absl::Duration kCommandTimeout = absl::Minutes(5);

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
// clang 14 deduces aggregates' template arguments only with a guide.
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

// `text` cut to at most `max` bytes, between UTF-8 characters.
std::string Cut(std::string text, size_t max) {
  if (text.size() <= max) return text;
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  text.resize(end);
  return text;
}

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

std::string LastLine(const std::string& text) {
  std::string t = text;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  const size_t nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

google::protobuf::Struct Input(
    std::initializer_list<std::pair<const char*, google::protobuf::Value>> fields) {
  google::protobuf::Struct s;
  for (const auto& [key, value] : fields) (*s.mutable_fields())[key] = value;
  return s;
}

google::protobuf::Value Str(const std::string& s) {
  google::protobuf::Value v;
  v.set_string_value(s);
  return v;
}

google::protobuf::Value Num(double n) {
  google::protobuf::Value v;
  v.set_number_value(n);
  return v;
}

absl::StatusOr<std::string> ReadFile(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return absl::FailedPreconditionError("no such file");
  if (fs::file_size(path, ec) > kMaxEditedFile) {
    return absl::FailedPreconditionError("the file is too large to edit (over 64 MiB)");
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  if (in.bad()) return absl::FailedPreconditionError("could not read it");
  return s.str();
}

absl::Status WriteFile(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) {
    std::error_code ec;
    return absl::FailedPreconditionError(fs::is_directory(path, ec) ? "it is a directory"
                                                                    : "could not write it");
  }
  return absl::OkStatus();
}

size_t Occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos;
       at = text.find(what, at + what.size())) {
    ++n;
  }
  return n;
}

}  // namespace

std::string DescribeStep(const ScriptedStep& step) {
  return std::visit(Overloaded{
                        [](const WriteStep& s) { return absl::StrCat("write ", s.path); },
                        [](const ReplaceStep& s) { return absl::StrCat("replace ", s.path); },
                        [](const PatchStep&) { return std::string("patch"); },
                        [](const DeleteStep& s) { return absl::StrCat("delete ", s.path); },
                        [](const RunStep& s) {
                          return absl::StrCat("run \"", Cut(FirstLine(s.command), 80), "\"");
                        },
                        [](const SayStep&) { return std::string("say"); },
                        [](const UsageStep&) { return std::string("usage"); },
                    },
                    step);
}

BashToolRun RunBashTool(const std::string& command, const std::string& cwd,
                        const std::string& call_id, const AgentEventSink& emit) {
  v1::AgentEvent call;
  call.mutable_tool_call()->set_call_id(call_id);
  call.mutable_tool_call()->set_tool_name("Bash");
  *call.mutable_tool_call()->mutable_input() = Input({{"command", Str(command)}});
  emit(call);
  BashToolRun run;
  std::string out;
  auto exit = RunChild(
      {"/bin/sh", "-c", command}, {}, cwd,
      [&](const std::string& line) {
        if (out.size() <= kMaxToolOutput) out += line + "\n";
      },
      absl::Now() + kCommandTimeout, nullptr);
  std::string err;
  if (exit.ok()) {
    if (exit->signal == 0 && !exit->timed_out) run.exit_code = exit->exit_code;
    err = exit->stderr_tail;
    if (exit->timed_out)
      absl::StrAppend(&err, "\n(killed after ", absl::FormatDuration(kCommandTimeout), ")");
  } else {
    err = std::string(exit.status().message());
  }
  const bool truncated = out.size() + err.size() > kMaxToolOutput;
  run.output = Cut(out + err, kMaxToolOutput);
  v1::AgentEvent result;
  result.mutable_tool_result()->set_call_id(call_id);
  result.mutable_tool_result()->set_output(run.output);
  result.mutable_tool_result()->set_truncated(truncated);
  result.mutable_tool_result()->set_is_error(run.exit_code != 0);
  emit(result);
  return run;
}

StepEngine::StepEngine(fs::path root, AgentEventSink emit)
    : root_(std::move(root)), emit_(std::move(emit)) {}

absl::Status StepEngine::Run(const std::vector<ScriptedStep>& steps) {
  for (size_t i = 0; i < steps.size(); ++i) {
    absl::Status s = RunOne(steps[i]);
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat("step ", i + 1, " of ", steps.size(), " (",
                                                 DescribeStep(steps[i]), "): ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status StepEngine::RunOne(const ScriptedStep& step) {
  return std::visit(
      Overloaded{
          [&](const WriteStep& s) { return Write(s); },
          [&](const ReplaceStep& s) { return Replace(s); },
          [&](const PatchStep& s) { return Patch(s); },
          [&](const DeleteStep& s) { return Delete(s); },
          [&](const RunStep& s) { return Bash(s); },
          [&](const SayStep& s) {
            said_ = s.text;
            v1::AgentEvent e;
            e.mutable_text()->set_text(s.text);
            emit_(e);
            return absl::OkStatus();
          },
          [&](const UsageStep& s) {
            usage_.set_input_tokens(usage_.input_tokens() + s.input_tokens);
            usage_.set_output_tokens(usage_.output_tokens() + s.output_tokens);
            usage_.set_cache_read_tokens(usage_.cache_read_tokens() + s.cache_read_tokens);
            usage_.set_cache_write_tokens(usage_.cache_write_tokens() + s.cache_write_tokens);
            usage_.set_cost_usd_micros(usage_.cost_usd_micros() + s.cost_usd_micros);
            v1::AgentEvent e;
            *e.mutable_usage() = usage_;
            e.mutable_usage()->set_turns(1 + calls_);
            emit_(e);
            return absl::OkStatus();
          },
      },
      step);
}

absl::StatusOr<fs::path> StepEngine::Resolve(const std::string& path, bool follow_last) const {
  if (path.empty()) return absl::InvalidArgumentError("the path is empty");
  if (path.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("the path has a NUL character");
  }
  const fs::path given(path);
  if (given.is_absolute()) {
    return absl::InvalidArgumentError(
        "absolute paths are not allowed: paths are relative to the working directory");
  }
  for (const auto& part : given) {
    if (part == "..") return absl::InvalidArgumentError("\"..\" is not allowed in a path");
  }
  std::error_code ec;
  const fs::path root = fs::canonical(root_, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("the working directory ", root_.string(), ": ", ec.message()));
  }
  fs::path relative = given.lexically_normal();
  if (!relative.has_filename()) relative = relative.parent_path();  // "dir/"
  if (relative.empty() || relative == ".") {
    return absl::InvalidArgumentError("the path names the working directory itself");
  }
  // The last component is resolved too, unless the step acts on a link itself.
  const fs::path resolved_part = follow_last ? relative : relative.parent_path();
  fs::path full = resolved_part.empty() ? root : fs::weakly_canonical(root / resolved_part, ec);
  if (ec) return absl::FailedPreconditionError(ec.message());
  const auto [r, f] = std::mismatch(root.begin(), root.end(), full.begin(), full.end());
  if (r != root.end()) {
    return absl::InvalidArgumentError(
        "the path leads outside the working directory (through a symbolic link)");
  }
  // What does not exist yet was left as written: a dangling link in it
  // would be followed by a write.
  fs::path at = root;
  for (auto it = f; it != full.end(); ++it) {
    at /= *it;
    if (fs::is_symlink(fs::symlink_status(at, ec))) {
      return absl::InvalidArgumentError(
          "the path goes through a symbolic link that points nowhere");
    }
  }
  if (!follow_last) full /= relative.filename();
  return full;
}

std::string StepEngine::Call(const std::string& tool, const google::protobuf::Struct& input) {
  const std::string id = absl::StrCat("call_", ++calls_);
  v1::AgentEvent e;
  e.mutable_tool_call()->set_call_id(id);
  e.mutable_tool_call()->set_tool_name(tool);
  *e.mutable_tool_call()->mutable_input() = input;
  emit_(e);
  return id;
}

void StepEngine::Result(const std::string& call_id, const std::string& output, bool is_error) {
  v1::AgentEvent e;
  e.mutable_tool_result()->set_call_id(call_id);
  e.mutable_tool_result()->set_output(Cut(output, kMaxToolOutput));
  e.mutable_tool_result()->set_truncated(output.size() > kMaxToolOutput);
  e.mutable_tool_result()->set_is_error(is_error);
  emit_(e);
}

absl::Status StepEngine::Write(const WriteStep& step) {
  const std::string id =
      Call("Write", Input({{"file_path", Str(step.path)}, {"content", Str(step.content)}}));
  absl::Status s = [&]() -> absl::Status {
    auto full = Resolve(step.path, /*follow_last=*/true);
    if (!full.ok()) return full.status();
    std::error_code ec;
    fs::create_directories(full->parent_path(), ec);
    if (ec) return absl::FailedPreconditionError(ec.message());
    return WriteFile(*full, step.content);
  }();
  Result(id,
         s.ok() ? absl::StrCat("Wrote ", step.content.size(), " bytes to ", step.path)
                : std::string(s.message()),
         !s.ok());
  return s;
}

absl::Status StepEngine::Replace(const ReplaceStep& step) {
  const std::string id = Call("Edit", Input({{"file_path", Str(step.path)},
                                             {"old_string", Str(step.old_text)},
                                             {"new_string", Str(step.new_text)},
                                             {"count", Num(step.count)}}));
  absl::Status s = [&]() -> absl::Status {
    if (step.old_text.empty()) return absl::InvalidArgumentError("the old text is empty");
    auto full = Resolve(step.path, /*follow_last=*/true);
    if (!full.ok()) return full.status();
    auto text = ReadFile(*full);
    if (!text.ok()) return text.status();
    const size_t found = Occurrences(*text, step.old_text);
    if (found != static_cast<size_t>(step.count)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the old text occurs ", found, " time", found == 1 ? "" : "s", ", not ", step.count));
    }
    return WriteFile(*full, absl::StrReplaceAll(*text, {{step.old_text, step.new_text}}));
  }();
  Result(id,
         s.ok() ? absl::StrCat("Replaced ", step.count, " occurrence", step.count == 1 ? "" : "s",
                               " in ", step.path)
                : std::string(s.message()),
         !s.ok());
  return s;
}

absl::Status StepEngine::Patch(const PatchStep& step) {
  const std::string id = Call("ApplyPatch", Input({{"patch", Str(step.diff)}}));
  std::error_code ec;
  const fs::path root = fs::canonical(root_, ec);
  absl::Status s;
  std::string output;
  if (ec) {
    s = absl::FailedPreconditionError(ec.message());
  } else {
    ChildCommand git;
    // git refuses paths outside the directory and beyond symbolic links.
    git.argv = {"git", "apply", "--recount", "-"};
    // As a patch tool for this directory: no repository above it applies.
    git.env = {{"GIT_CEILING_DIRECTORIES", root.parent_path().string()}};
    git.cwd = root.string();
    git.stdin_bytes = step.diff;
    git.on_line = [&](const std::string& line) {
      if (output.size() <= kMaxToolOutput) output += line + "\n";
    };
    git.deadline = absl::Now() + kCommandTimeout;
    auto exit = RunChild(git);
    if (!exit.ok()) {
      s = absl::FailedPreconditionError(
          absl::StrCat("could not run git apply: ", exit.status().message()));
    } else {
      output += exit->stderr_tail;
      if (exit->exit_code != 0) {
        s = absl::FailedPreconditionError(absl::StrCat(
            "the patch does not apply: ", output.empty() ? "git apply failed" : LastLine(output)));
      }
    }
  }
  Result(id, s.ok() ? (output.empty() ? "Applied the patch" : output) : std::string(s.message()),
         !s.ok());
  return s;
}

absl::Status StepEngine::Delete(const DeleteStep& step) {
  const std::string id = Call("Delete", Input({{"file_path", Str(step.path)}}));
  absl::Status s = [&]() -> absl::Status {
    auto full = Resolve(step.path, /*follow_last=*/false);
    if (!full.ok()) return full.status();
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(*full, ec))) {
      return absl::FailedPreconditionError("no such file or directory");
    }
    fs::remove_all(*full, ec);
    if (ec) return absl::FailedPreconditionError(ec.message());
    return absl::OkStatus();
  }();
  Result(id, s.ok() ? absl::StrCat("Deleted ", step.path) : std::string(s.message()), !s.ok());
  return s;
}

absl::Status StepEngine::Bash(const RunStep& step) {
  const BashToolRun run =
      RunBashTool(step.command, root_.string(), absl::StrCat("call_", ++calls_), emit_);
  if (run.exit_code == 0) return absl::OkStatus();
  std::string why = run.exit_code < 0 ? "it did not exit normally"
                                      : absl::StrCat("it exited with status ", run.exit_code);
  if (const std::string last = LastLine(run.output); !last.empty()) {
    absl::StrAppend(&why, ": ", Cut(last, 500));
  }
  return absl::FailedPreconditionError(why);
}

}  // namespace orchestrator::agents
