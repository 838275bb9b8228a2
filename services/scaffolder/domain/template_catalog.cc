#include "services/scaffolder/domain/template_catalog.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "re2/re2.h"
#include "services/common/crypto/secret_box.h"
#include "services/scaffolder/domain/answers.h"
#include "services/scaffolder/domain/renderer.h"

namespace orchestrator::scaffolder {
namespace fs = std::filesystem;
namespace {

// What one template may hold.
constexpr size_t kMaxManifestBytes = 256 << 10;
constexpr size_t kMaxFiles = 2000;
constexpr uintmax_t kMaxFileBytes = 4 << 20;
constexpr uintmax_t kMaxTotalBytes = 32 << 20;

absl::Status Refuse(const std::string& where, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", why));
}

absl::Status ValidateManifest(const v1::Template& t, const std::string& manifest_path) {
  static const RE2* const kId = new RE2("[a-z][a-z0-9-]{0,62}[a-z0-9]");
  static const RE2* const kVersion = new RE2("[0-9A-Za-z][0-9A-Za-z.+-]{0,63}");
  if (!RE2::FullMatch(t.id(), *kId)) {
    return Refuse(manifest_path + " id", "lowercase letters, digits and hyphens, 2-64 long");
  }
  if (!RE2::FullMatch(t.version(), *kVersion)) {
    return Refuse(manifest_path + " version", "a version such as 1.0.0");
  }
  if (auto s = ValidateQuestions(t); !s.ok()) {
    return Refuse(manifest_path, s.message());
  }
  const auto& rc = t.run_contract();
  if (rc.build_file().empty())
    return Refuse(manifest_path + " run_contract.build_file", "required");
  if (rc.port() < 1 || rc.port() > 65535) {
    return Refuse(manifest_path + " run_contract.port", "between 1 and 65535");
  }
  if (!absl::StartsWith(rc.health_path(), "/") ||
      rc.health_path().find_first_of(" \t\r\n") != std::string::npos) {
    return Refuse(manifest_path + " run_contract.health_path", "a path starting with /");
  }
  if (rc.test_command().empty())
    return Refuse(manifest_path + " run_contract.test_command", "required");
  for (const auto& glob : t.copy_only()) {
    if (glob.empty() || glob[0] == '/' || absl::StrContains(glob, "..")) {
      return Refuse(manifest_path + " copy_only",
                    absl::StrCat("'", glob, "' is not a relative glob"));
    }
  }
  return absl::OkStatus();
}

// The render context LoadTemplate checks paths with: the defaults, and a
// plain word for questions without one.
RenderContext DefaultsContext(const v1::Template& t) {
  ResolvedAnswers answers;
  for (const auto& q : t.questions()) {
    if (q.secret()) continue;
    answers.values[q.name()] = q.default_value().empty() ? "value" : q.default_value();
  }
  RenderContext context = ContextOf(t, answers, {"prj_0", "project"});
  for (auto& [name, value] : context) value = RenderText(value, context);
  return context;
}

}  // namespace

absl::StatusOr<LoadedTemplate> LoadTemplate(const std::string& dir,
                                            const v1::TemplateSource& source) {
  const fs::path root(dir);
  const fs::path manifest_path = root / kManifestFile;
  std::error_code ec;
  if (!fs::is_regular_file(fs::symlink_status(manifest_path, ec))) {
    return absl::NotFoundError(absl::StrCat("no ", kManifestFile, " in the template"));
  }
  if (fs::file_size(manifest_path, ec) > kMaxManifestBytes) {
    return Refuse(kManifestFile, "larger than 256 KiB");
  }
  std::ifstream in(manifest_path);
  std::stringstream text;
  text << in.rdbuf();
  LoadedTemplate loaded;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  if (auto s = google::protobuf::util::JsonStringToMessage(text.str(), &loaded.manifest, options);
      !s.ok()) {
    return Refuse(kManifestFile, s.message().as_string());
  }
  v1::Template& t = loaded.manifest;
  t.clear_files();
  *t.mutable_source() = source;
  if (auto s = ValidateManifest(t, kManifestFile); !s.ok()) return s;

  loaded.files_dir = (root / "files").string();
  if (!fs::is_directory(fs::symlink_status(loaded.files_dir, ec))) {
    return Refuse("files/", "the template has no files directory");
  }
  const RenderContext defaults = DefaultsContext(t);
  std::vector<std::string> files;
  uintmax_t total = 0;
  for (auto it = fs::recursive_directory_iterator(loaded.files_dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path relative = fs::relative(it->path(), loaded.files_dir);
    const std::string where = absl::StrCat("files/", relative.string());
    const auto status = it->symlink_status();
    if (fs::is_symlink(status)) return Refuse(where, "symbolic links are refused");
    if (fs::is_directory(status)) continue;
    if (!fs::is_regular_file(status)) return Refuse(where, "only plain files are allowed");
    const uintmax_t size = it->file_size();
    if (size > kMaxFileBytes) return Refuse(where, "larger than 4 MiB");
    total += size;
    if (total > kMaxTotalBytes) return Refuse("files/", "more than 32 MiB in all");
    if (files.size() >= kMaxFiles) return Refuse("files/", "more than 2000 files");
    // As written and as rendered with the defaults, a path stays inside.
    if (auto s = CheckProjectPath(relative.string(), where); !s.ok()) return s.status();
    if (auto s = RenderPath(relative.string(), defaults, where); !s.ok()) return s.status();
    files.push_back(relative.string());
  }
  if (ec)
    return absl::InternalError(absl::StrCat("cannot read the template's files: ", ec.message()));
  if (files.empty()) return Refuse("files/", "the template has no files");
  std::sort(files.begin(), files.end());
  for (auto& f : files) t.add_files(std::move(f));
  return loaded;
}

TemplateCatalog::TemplateCatalog(std::string builtin_dir, std::string cache_dir,
                                 TemplateFetcher fetch)
    : builtin_dir_(std::move(builtin_dir)),
      cache_dir_(std::move(cache_dir)),
      fetch_(std::move(fetch)) {}

absl::Status TemplateCatalog::LoadBuiltins() {
  std::error_code ec;
  if (!fs::is_directory(builtin_dir_, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("--templates_dir: '", builtin_dir_, "' is not a directory"));
  }
  for (const auto& entry : fs::directory_iterator(builtin_dir_, ec)) {
    if (!entry.is_directory()) continue;
    auto loaded = LoadTemplate(entry.path().string(), {});
    if (!loaded.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "built-in template ", entry.path().filename().string(), ": ", loaded.status().message()));
    }
    std::string id = loaded->manifest.id();
    builtins_[id] = *std::move(loaded);
  }
  return absl::OkStatus();
}

std::vector<v1::Template> TemplateCatalog::List(const std::string& language) const {
  std::vector<v1::Template> out;
  for (const auto& [id, loaded] : builtins_) {
    if (language.empty() || loaded.manifest.language() == language) out.push_back(loaded.manifest);
  }
  return out;
}

absl::StatusOr<LoadedTemplate> TemplateCatalog::Find(const std::string& template_id,
                                                     const v1::TemplateSource& source,
                                                     const std::string& field) const {
  if (!source.git_url().empty() || !source.git_tag().empty()) return FromGit(source, field);
  auto it = builtins_.find(template_id);
  if (it == builtins_.end()) {
    if (template_id.empty()) return absl::InvalidArgumentError("template_id: required");
    return absl::NotFoundError(absl::StrCat("template '", template_id,
                                            "' is not a built-in template (see ListTemplates)"));
  }
  return it->second;
}

absl::StatusOr<LoadedTemplate> TemplateCatalog::FromGit(const v1::TemplateSource& source,
                                                        const std::string& field) const {
  // Not file://: the server's own disk (other users' repositories) is no
  // template source.
  static const RE2* const kUrl = new RE2("https?://[^\\s]+");
  static const RE2* const kTag = new RE2("[A-Za-z0-9][A-Za-z0-9._/-]{0,127}");
  if (!RE2::FullMatch(source.git_url(), *kUrl)) {
    return Refuse(field + ".git_url", "an https:// or http:// URL");
  }
  if (!RE2::FullMatch(source.git_tag(), *kTag) || absl::StrContains(source.git_tag(), "..")) {
    return Refuse(field + ".git_tag", "a tag name");
  }
  const std::string key = HashToken(absl::StrCat(source.git_url(), "\n", source.git_tag()));
  const fs::path dir = fs::path(cache_dir_) / key.substr(0, 32);
  absl::MutexLock lock(&fetch_mu_);
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::create_directories(cache_dir_, ec);
    const fs::path scratch = fs::path(cache_dir_) / absl::StrCat(".fetch-", NewId(""));
    if (auto s = fetch_(source, scratch.string()); !s.ok()) {
      fs::remove_all(scratch, ec);
      return s;
    }
    fs::remove_all(scratch / ".git", ec);
    // Complete or absent: a crash mid-fetch leaves only a scratch dir.
    fs::rename(scratch, dir, ec);
    if (ec) {
      fs::remove_all(scratch, ec);
      return absl::InternalError("cannot keep the fetched template");
    }
  }
  auto loaded = LoadTemplate(dir.string(), source);
  if (!loaded.ok() && loaded.status().code() == absl::StatusCode::kInvalidArgument) {
    return absl::InvalidArgumentError(absl::StrCat(
        "template at ", source.git_url(), " ", source.git_tag(), ": ", loaded.status().message()));
  }
  return loaded;
}

}  // namespace orchestrator::scaffolder
