#include "services/engineering/domain/prompts.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "services/common/validation/request_bounds.h"

namespace orchestrator::engineering {
namespace {

constexpr size_t kSubjectMax = 72;
constexpr size_t kBodyMax = 4096;

std::string FirstLine(absl::string_view text) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    // Markdown headings and emphasis make poor subjects.
    line = absl::StripLeadingAsciiWhitespace(absl::StripPrefix(line, "#"));
    while (absl::ConsumePrefix(&line, "#")) {
    }
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty()) return std::string(line);
  }
  return "";
}

}  // namespace

std::string CommandLine(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    if (!a.empty() && a.find_first_of(" \t\n'\"\\$`") == std::string::npos) {
      out += a;
    } else {
      out += absl::StrCat("'", absl::StrReplaceAll(a, {{"'", "'\\''"}}), "'");
    }
  }
  return out;
}

std::string WorkerInstructions(const projects::v1::Project& project) {
  const std::string tests = CommandLine(
      {project.run_contract().test_command().begin(), project.run_contract().test_command().end()});
  return absl::StrCat(
      "# Developer agent for the project ", project.name(), "\n\n",
      "You change the code of the project ", project.name(),
      ". Its repository is cloned in `./repo` (on its default branch); make every change "
      "there.\n\n",
      "## How your work is checked\n",
      "- After your turn the platform runs the project's tests itself, from `./repo`: `", tests,
      "`. Run them yourself while you work, with `NO_PROXY=localhost,127.0.0.1,::1` set: "
      "the sandbox reaches the outside through a proxy, but a test's own server is on the "
      "sandbox's loopback.\n",
      "- Only a change whose tests pass is committed and pushed. When they fail you get their "
      "output in your next turn.\n\n",
      "## Rules\n",
      "- Do not commit, push, switch branches or rewrite history: the platform commits and "
      "pushes your change once its tests pass.\n",
      "- Do not delete, skip or weaken tests to make them pass, unless the task asks for it; "
      "add or update tests for what you change.\n",
      "- Follow the repository's own conventions (its README, and its CLAUDE.md or AGENTS.md "
      "in `./repo` when it has them).\n",
      "- End your turn with a short summary of what you changed: its first line becomes the "
      "commit's subject.\n");
}

std::string TestCounts(const v1::TestReport& report) {
  const int total = report.passed_count() + report.failed_count() + report.skipped_count();
  if (total == 0) {
    switch (report.outcome()) {
      case v1::TEST_OUTCOME_PASSED:
        return "passed";
      case v1::TEST_OUTCOME_NOT_RUN:
        return "not run";
      default:
        return "failed";
    }
  }
  std::string out =
      absl::StrCat(report.passed_count(), " passed, ", report.failed_count(), " failed");
  if (report.skipped_count() > 0) absl::StrAppend(&out, ", ", report.skipped_count(), " skipped");
  return out;
}

std::string AfterTestsFailed(int iteration, int max_iterations, const v1::TestReport& report) {
  // The report keeps at most the last 8 KiB.
  const std::string& tail = report.output_tail();
  return absl::StrCat(kTestsFailedHeader, " (attempt ", iteration, " of ", max_iterations,
                      "): ", TestCounts(report), ".\n", "The platform ran `", report.command(),
                      "` in ./repo. The end of its output:\n\n```\n", tail,
                      "\n```\n\nFix the code so that the tests pass; do not weaken the tests. "
                      "End with a short summary of the whole change.");
}

std::string AfterTurnFailed(const std::string& why) {
  return absl::StrCat("Your previous turn did not finish: ", why,
                      "\nContinue the task from where the files in ./repo are now, and end with "
                      "a short summary of the whole change.");
}

std::string AfterNoChange() {
  return "Your previous turn changed nothing in ./repo. Make the change the task asks for in "
         "./repo, then end with a short summary of it.";
}

std::string CommitSubject(const std::string& summary, const std::string& run_id, bool wip) {
  std::string subject = FirstLine(summary);
  if (subject.empty()) subject = absl::StrCat("Engineering run ", run_id);
  if (wip) subject = absl::StrCat("WIP (tests failing): ", subject);
  // Truncated adds its ellipsis (3 bytes) past the cut.
  if (subject.size() > kSubjectMax) subject = Truncated(subject, kSubjectMax - 3);
  return subject;
}

std::string CommitMessage(const std::string& summary, const std::string& run_id,
                          const v1::TestReport& report, bool wip) {
  std::string body(absl::StripAsciiWhitespace(summary));
  if (body.size() > kBodyMax) body = Truncated(body, kBodyMax);
  std::string message = CommitSubject(summary, run_id, wip);
  if (!body.empty() && body != message) absl::StrAppend(&message, "\n\n", body);
  absl::StrAppend(&message, "\n\nOrchestrator-Run: ", run_id, "\nTests: ", TestCounts(report), " (",
                  report.command(), ")\n");
  return message;
}

}  // namespace orchestrator::engineering
