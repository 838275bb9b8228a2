#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clients/cli/command.h"

namespace orchestrator::cli {

// A named set of grants for a kind of agent.
struct Profile {
  std::string name;     // PRODUCT_OWNER, DEVELOPER, DEVOPS
  std::string summary;  // for people
  std::vector<std::string> grants;
};
const std::vector<Profile>& Profiles();
const Profile* FindProfile(const std::string& name);

// The commands `grants` allow: those whose RPC's declared permission one of
// them matches, plus those any authenticated caller may run.
std::vector<const Command*> AllowedCommands(const std::vector<std::string>& grants);

enum class SkillsFormat { kClaude, kAgents };

// The files an export writes, by path relative to the output directory:
// for kClaude the CLAUDE.md section and .claude/skills/orchestrator-<group>.md,
// for kAgents the AGENTS.md section with every command's usage inline.
// The instruction file's text is only the generated section; WriteSkills
// puts it into an existing file between its markers.
std::map<std::string, std::string> RenderSkills(const std::vector<std::string>& grants,
                                                SkillsFormat format);

// Writes RenderSkills into `dir` (created if missing), replacing an earlier
// generated section of the instruction file and keeping the rest of it.
// Returns the paths written.
absl::StatusOr<std::vector<std::string>> WriteSkills(const std::string& dir,
                                                     const std::vector<std::string>& grants,
                                                     SkillsFormat format);

extern const char kSectionBegin[];
extern const char kSectionEnd[];

}  // namespace orchestrator::cli
