#include "services/scaffolder/domain/answers.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "re2/re2.h"
#include "services/scaffolder/domain/renderer.h"

namespace orchestrator::scaffolder {
namespace {

constexpr size_t kMaxAnswerBytes = 1024;  // as the request's bounds

bool IsQuestionName(const std::string& name) {
  static const RE2* const kName = new RE2("[a-z][a-z0-9_]{0,63}");
  return RE2::FullMatch(name, *kName);
}

bool IsSecretName(const std::string& name) {
  static const RE2* const kName = new RE2("[A-Z][A-Z0-9_]{0,127}");
  return RE2::FullMatch(name, *kName);
}

v1::QuestionType TypeOf(const v1::TemplateQuestion& q) {
  return q.type() == v1::QUESTION_TYPE_UNSPECIFIED ? v1::QUESTION_TYPE_STRING : q.type();
}

absl::Status Refuse(const std::string& field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

// Normalizes and checks one value against its question.
absl::StatusOr<std::string> Check(const v1::TemplateQuestion& q, const std::string& value,
                                  const std::string& field) {
  if (value.size() > kMaxAnswerBytes) {
    return Refuse(field, absl::StrCat("at most ", kMaxAnswerBytes, " bytes"));
  }
  if (value.find_first_of("\r\n") != std::string::npos || value.find('\0') != std::string::npos) {
    return Refuse(field, "must be one line");
  }
  switch (TypeOf(q)) {
    case v1::QUESTION_TYPE_INTEGER: {
      int64_t n;
      if (!absl::SimpleAtoi(value, &n)) return Refuse(field, "must be a whole number");
      if (q.min() < q.max() && (n < q.min() || n > q.max())) {
        return Refuse(field, absl::StrCat("must be between ", q.min(), " and ", q.max()));
      }
      return absl::StrCat(n);
    }
    case v1::QUESTION_TYPE_BOOLEAN: {
      std::string v = absl::AsciiStrToLower(value);
      if (v == "true" || v == "yes" || v == "1") return std::string("true");
      if (v == "false" || v == "no" || v == "0") return std::string("false");
      return Refuse(field, "must be true or false");
    }
    case v1::QUESTION_TYPE_CHOICE:
      for (const auto& c : q.choices()) {
        if (c == value) return value;
      }
      return Refuse(field, absl::StrCat("must be one of: ", absl::StrJoin(q.choices(), ", ")));
    default:
      if (!q.pattern().empty()) {
        RE2 pattern(q.pattern(), RE2::Quiet);
        if (!RE2::FullMatch(value, pattern)) {
          return Refuse(field, q.pattern_help().empty() ? absl::StrCat("must match ", q.pattern())
                                                        : q.pattern_help());
        }
      }
      return value;
  }
}

}  // namespace

absl::Status ValidateQuestions(const v1::Template& manifest) {
  std::set<std::string> names, secret_names;
  for (int i = 0; i < manifest.questions_size(); ++i) {
    const auto& q = manifest.questions(i);
    const std::string field = absl::StrCat("questions[", i, "]");
    if (!IsQuestionName(q.name())) {
      return Refuse(field + ".name",
                    "lowercase letters, digits and underscores, starting with a letter");
    }
    if (q.name() == "project_name" || q.name() == "project_id" || q.name() == "template_id" ||
        q.name() == "template_version") {
      return Refuse(field + ".name", absl::StrCat("'", q.name(), "' is given by the scaffolder"));
    }
    if (!names.insert(q.name()).second) {
      return Refuse(field + ".name", absl::StrCat("'", q.name(), "' is asked twice"));
    }
    if (!v1::QuestionType_IsValid(q.type())) return Refuse(field + ".type", "unknown type");
    if (TypeOf(q) == v1::QUESTION_TYPE_CHOICE && q.choices().empty()) {
      return Refuse(field + ".choices", "a choice question needs choices");
    }
    if (!q.pattern().empty()) {
      RE2 pattern(q.pattern(), RE2::Quiet);
      if (!pattern.ok()) return Refuse(field + ".pattern", pattern.error());
    }
    if (q.secret()) {
      if (!IsSecretName(q.secret_name())) {
        return Refuse(field + ".secret_name",
                      "a secret question needs a secret_name of uppercase letters, digits and "
                      "underscores");
      }
      if (!secret_names.insert(q.secret_name()).second) {
        return Refuse(field + ".secret_name", "used twice");
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ResolvedAnswers> ResolveAnswers(const v1::Template& manifest,
                                               const std::map<std::string, std::string>& given,
                                               const ProjectFacts& project) {
  std::set<std::string> asked;
  for (const auto& q : manifest.questions()) asked.insert(q.name());
  for (const auto& [name, value] : given) {
    if (!asked.count(name)) {
      return Refuse(absl::StrCat("answers.", name),
                    absl::StrCat("template ", manifest.id(), " asks no such question"));
    }
  }
  ResolvedAnswers out;
  for (const auto& q : manifest.questions()) {
    const std::string field = absl::StrCat("answers.", q.name());
    std::string value;
    if (auto it = given.find(q.name()); it != given.end()) {
      value = it->second;
    } else if (q.required() && q.default_value().empty()) {
      return Refuse(field, q.help().empty() ? "required" : absl::StrCat("required: ", q.help()));
    } else if (q.secret() || q.default_value().empty()) {
      if (q.secret()) continue;  // an unanswered optional secret is not stored
      // An optional question nobody answered: empty, false or 0, unchecked.
      value = "";
      if (TypeOf(q) == v1::QUESTION_TYPE_BOOLEAN) value = "false";
      if (TypeOf(q) == v1::QUESTION_TYPE_INTEGER) value = "0";
      if (TypeOf(q) == v1::QUESTION_TYPE_STRING) {
        out.values[q.name()] = value;
        continue;
      }
    } else {
      // Defaults may use earlier answers and the project's facts.
      value = RenderText(q.default_value(), ContextOf(manifest, out, project));
    }
    auto checked = Check(q, value, field);
    if (!checked.ok()) return checked.status();
    if (q.secret()) {
      out.secrets[q.secret_name()] = *checked;
    } else {
      out.values[q.name()] = *checked;
    }
  }
  return out;
}

}  // namespace orchestrator::scaffolder
