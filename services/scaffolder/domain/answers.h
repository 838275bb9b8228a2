#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "orchestrator/scaffolder/v1/scaffolder.pb.h"

namespace orchestrator::scaffolder {

// What the render context holds besides the answers.
struct ProjectFacts {
  std::string project_id;
  std::string project_name;
};

// A template's questions answered: what the files are rendered with.
struct ResolvedAnswers {
  // Every non-secret question's value, normalized ("true"/"false" for
  // booleans, decimal for integers): rendered into the files, recorded in
  // the answers record and on the project.
  std::map<std::string, std::string> values;
  // Secret questions answered: secret_name → value. Never rendered, never
  // recorded; stored as project secrets.
  std::map<std::string, std::string> secrets;
};

// Checks `given` against the template's questions in order — unknown
// names, required ones missing, types, choices, patterns (RE2, whole value)
// and ranges — and fills the defaults, which may use earlier answers and
// the project's facts. INVALID_ARGUMENT naming "answers.<question>".
absl::StatusOr<ResolvedAnswers> ResolveAnswers(const v1::Template& manifest,
                                               const std::map<std::string, std::string>& given,
                                               const ProjectFacts& project);

// Checks a template's questions themselves (for LoadTemplate):
// INVALID_ARGUMENT naming "questions[i].<field>".
absl::Status ValidateQuestions(const v1::Template& manifest);

}  // namespace orchestrator::scaffolder
