#pragma once

#include <string>
#include <vector>

#include "orchestrator/engineering/v1/engineering.pb.h"
#include "orchestrator/projects/v1/projects.pb.h"

namespace orchestrator::engineering {

// What a developer agent is told, and what the platform writes into the
// commits it makes: one place for every text of a run.

// The first line of a turn that follows failing tests (a fake model API
// keys on it in the e2e test).
inline constexpr char kTestsFailedHeader[] = "The project's tests failed after your change";

// A command as people read it: arguments with spaces or quotes quoted.
std::string CommandLine(const std::vector<std::string>& argv);

// The worker's standing instructions (CLAUDE.md / AGENTS.md): the
// repository's place, the test command, and the rules of the platform.
std::string WorkerInstructions(const projects::v1::Project& project);

// The turn after the tests failed: what ran and the end of its output.
std::string AfterTestsFailed(int iteration, int max_iterations, const v1::TestReport& report);
// The turn after the agent's turn failed (crashed, timed out).
std::string AfterTurnFailed(const std::string& why);
// The turn after a turn that changed nothing.
std::string AfterNoChange();

// "5 passed, 1 failed", or the outcome when the runner printed no counts.
std::string TestCounts(const v1::TestReport& report);

// A run's commit message: the agent's summary (its first line the
// subject), then the trailers that tie the commit to its run and tests.
// `wip` marks an attempt whose tests fail (pushed for inspection only).
std::string CommitMessage(const std::string& summary, const std::string& run_id,
                          const v1::TestReport& report, bool wip);
// Its subject line alone.
std::string CommitSubject(const std::string& summary, const std::string& run_id, bool wip);

}  // namespace orchestrator::engineering
