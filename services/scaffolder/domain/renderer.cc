#include "services/scaffolder/domain/renderer.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <mstch/mstch.hpp>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"

namespace orchestrator::scaffolder {
namespace fs = std::filesystem;
namespace {

absl::StatusOr<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InternalError(absl::StrCat("cannot read ", path.string()));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

absl::Status WriteFile(const fs::path& path, const std::string& bytes, bool executable) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", path.parent_path().string()));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  fs::permissions(path, executable ? fs::perms(0755) : fs::perms(0644), ec);
  return absl::OkStatus();
}

// fnmatch-like globs over '/'-separated paths: '*' within a segment, '**'
// across segments, '?' one character.
bool GlobMatch(absl::string_view glob, absl::string_view path) {
  if (glob.empty()) return path.empty();
  if (absl::StartsWith(glob, "**")) {
    absl::string_view rest = glob.substr(2);
    if (absl::StartsWith(rest, "/")) rest.remove_prefix(1);
    for (size_t i = 0; i <= path.size(); ++i) {
      if (GlobMatch(rest, path.substr(i))) return true;
    }
    return false;
  }
  if (glob[0] == '*') {
    for (size_t i = 0; i <= path.size(); ++i) {
      if (GlobMatch(glob.substr(1), path.substr(i))) return true;
      if (i < path.size() && path[i] == '/') break;
    }
    return false;
  }
  if (path.empty()) return false;
  if (glob[0] == '?' ? path[0] != '/' : glob[0] == path[0]) {
    return GlobMatch(glob.substr(1), path.substr(1));
  }
  return false;
}

}  // namespace

RenderContext ContextOf(const v1::Template& manifest, const ResolvedAnswers& answers,
                        const ProjectFacts& project) {
  RenderContext context = answers.values;
  context["project_id"] = project.project_id;
  context["project_name"] = project.project_name;
  context["template_id"] = manifest.id();
  context["template_version"] = manifest.version();
  return context;
}

std::string RenderText(const std::string& text, const RenderContext& context) {
  if (text.find("{{") == std::string::npos) return text;
  mstch::map values;
  for (const auto& [name, value] : context) {
    // Booleans drive sections: {{#flag}}...{{/flag}}.
    if (value == "true") {
      values.emplace(name, true);
    } else if (value == "false") {
      values.emplace(name, false);
    } else {
      values.emplace(name, value);
    }
  }
  return mstch::render(text, values);
}

absl::StatusOr<std::string> RenderPath(const std::string& path, const RenderContext& context,
                                       const std::string& what) {
  return CheckProjectPath(RenderText(path, context), what);
}

absl::StatusOr<std::string> CheckProjectPath(const std::string& rendered, const std::string& what) {
  if (rendered.empty() || rendered[0] == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": '", rendered, "' is not a path inside the project"));
  }
  std::vector<std::string> segments = absl::StrSplit(rendered, '/');
  for (size_t i = 0; i < segments.size(); ++i) {
    const auto& s = segments[i];
    if (s.empty() || s == "." || s == ".." || s.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": '", rendered, "' leaves the project's directory"));
    }
    if (s == ".git") {
      return absl::InvalidArgumentError(absl::StrCat(what, ": '", rendered, "' writes into .git"));
    }
  }
  if (rendered == kAnswersFile) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": '", rendered, "' is the scaffolder's answers record"));
  }
  return rendered;
}

absl::Status RenderProject(const LoadedTemplate& loaded, const ResolvedAnswers& answers,
                           const ProjectFacts& project, const std::string& out_dir) {
  const v1::Template& manifest = loaded.manifest;
  const RenderContext context = ContextOf(manifest, answers, project);
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", out_dir));
  std::set<std::string> written;
  for (const auto& file : manifest.files()) {
    auto target = RenderPath(file, context, absl::StrCat("files/", file));
    if (!target.ok()) return target.status();
    if (!written.insert(*target).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("files/", file, ": renders to '", *target, "', which another file also is"));
    }
    const fs::path source = fs::path(loaded.files_dir) / file;
    auto bytes = ReadFile(source);
    if (!bytes.ok()) return bytes.status();
    bool copy_only = false;
    for (const auto& glob : manifest.copy_only()) copy_only |= GlobMatch(glob, file);
    struct stat st {};
    bool executable = ::stat(source.c_str(), &st) == 0 && (st.st_mode & S_IXUSR);
    if (auto s = WriteFile(fs::path(out_dir) / *target,
                           copy_only ? *bytes : RenderText(*bytes, context), executable);
        !s.ok()) {
      return s;
    }
  }
  // The answers record: ordered keys, so the same answers give the same bytes.
  nlohmann::ordered_json record;
  record["_template"] = manifest.id();
  record["_version"] = manifest.version();
  if (!manifest.source().git_url().empty()) {
    record["_source"] = {{"git_url", manifest.source().git_url()},
                         {"git_tag", manifest.source().git_tag()}};
  } else {
    record["_source"] = "builtin";
  }
  std::string contract;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = false;
  (void)google::protobuf::util::MessageToJsonString(manifest.run_contract(), &contract, options);
  record["_run_contract"] = nlohmann::ordered_json::parse(contract.empty() ? "{}" : contract);
  for (const auto& [name, value] : answers.values) record[name] = value;
  return WriteFile(fs::path(out_dir) / kAnswersFile, record.dump(2) + "\n", false);
}

}  // namespace orchestrator::scaffolder
