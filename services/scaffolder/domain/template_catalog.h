#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "orchestrator/scaffolder/v1/scaffolder.pb.h"

namespace orchestrator::scaffolder {

// A template read from its directory and checked: the manifest (with its
// `files` and `source` filled) and where its files are.
struct LoadedTemplate {
  v1::Template manifest;
  std::string files_dir;  // <template>/files
};

// The manifest file of a template directory.
inline constexpr char kManifestFile[] = "template.json";

// Reads `dir` as a template: its manifest (protobuf JSON of v1::Template),
// the questions (names, types, defaults, choices, patterns), the run
// contract, and every file under files/. Refuses (INVALID_ARGUMENT naming
// the manifest field or the file) a template whose files are not plain
// files, whose paths — as written or rendered with the defaults — are
// absolute, leave the directory or write into .git, or that is larger than
// the bounds.
absl::StatusOr<LoadedTemplate> LoadTemplate(const std::string& dir,
                                            const v1::TemplateSource& source);

// Fetches `source` (a git URL at a tag) into `dir`, which must not exist.
using TemplateFetcher =
    std::function<absl::Status(const v1::TemplateSource& source, const std::string& dir)>;

// The templates the scaffolder knows: the built-in ones (every directory
// under `builtin_dir`, loaded once at start) and templates from git URLs,
// fetched once per URL and tag into `cache_dir`.
class TemplateCatalog {
 public:
  TemplateCatalog(std::string builtin_dir, std::string cache_dir, TemplateFetcher fetch);

  // Loads the built-in templates; any one that does not load is an error
  // (the product ships them: a broken one is a bug to see at start).
  absl::Status LoadBuiltins();

  // The built-in templates (for `language`, "" = any), by id.
  std::vector<v1::Template> List(const std::string& language) const;

  // A built-in template by id, or the template at `source` when it names a
  // git URL. NOT_FOUND for an unknown id; INVALID_ARGUMENT naming `field`
  // for a malformed source; UNAVAILABLE / NOT_FOUND when it cannot be
  // fetched.
  absl::StatusOr<LoadedTemplate> Find(const std::string& template_id,
                                      const v1::TemplateSource& source,
                                      const std::string& field) const;

 private:
  absl::StatusOr<LoadedTemplate> FromGit(const v1::TemplateSource& source,
                                         const std::string& field) const;

  std::string builtin_dir_;
  std::string cache_dir_;
  TemplateFetcher fetch_;
  std::map<std::string, LoadedTemplate> builtins_;  // by id; written only by LoadBuiltins
  mutable absl::Mutex fetch_mu_;  // serializes fetches into the cache (one per source at once)
};

using TemplateCatalogPtr = std::shared_ptr<TemplateCatalog>;

}  // namespace orchestrator::scaffolder
