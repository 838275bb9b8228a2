#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "services/scaffolder/domain/answers.h"
#include "services/scaffolder/domain/template_catalog.h"

namespace orchestrator::scaffolder {

// The answers record every generated project keeps at its root (as
// Copier's .copier-answers.yml): the template, its version and source, the
// run contract and the non-secret answers.
inline constexpr char kAnswersFile[] = ".orchestrator-answers.json";

// The values a template's files and paths are rendered with.
using RenderContext = std::map<std::string, std::string>;
RenderContext ContextOf(const v1::Template& manifest, const ResolvedAnswers& answers,
                        const ProjectFacts& project);

// Renders one mustache text (booleans "true"/"false" drive sections).
std::string RenderText(const std::string& text, const RenderContext& context);

// Renders a path relative to files/ and checks the result stays inside the
// output: no empty, "." or ".." segment, not absolute, nothing under .git.
// INVALID_ARGUMENT naming `what`.
absl::StatusOr<std::string> RenderPath(const std::string& path, const RenderContext& context,
                                       const std::string& what);

// The check RenderPath makes, on a path as it is.
absl::StatusOr<std::string> CheckProjectPath(const std::string& path, const std::string& what);

// Renders the template into `out_dir` (created; must be empty or missing)
// and writes the answers record there. Deterministic: the same template
// and answers give the same bytes.
absl::Status RenderProject(const LoadedTemplate& loaded, const ResolvedAnswers& answers,
                           const ProjectFacts& project, const std::string& out_dir);

}  // namespace orchestrator::scaffolder
