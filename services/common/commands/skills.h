#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/common/commands/command.h"

namespace orchestrator::commands {

// The commands `grants` allow: those whose RPC's declared permission one of
// them matches, plus those any authenticated caller may run.
std::vector<const Command*> AllowedCommands(const std::vector<std::string>& grants);

// How an agent CLI reads its instructions and skills. A skill is a directory
// <skills dir>/<name>/SKILL.md whose YAML front matter holds `name` (lower-case
// letters, digits, hyphens; at most 64 characters) and `description` (what it
// does and when to use it; at most 1024 characters): the agent lists every
// skill by name and description and reads the rest when it needs it.
enum class SkillsFormat {
  kClaude,  // Claude Code: CLAUDE.md, skills in .claude/skills/
  kCodex,   // Codex: AGENTS.md, skills in .agents/skills/
  kAgents,  // any other agent reading AGENTS.md: every command's usage inline
};

// The files an export writes, by path relative to the output directory:
// the instruction file's section (a table of the allowed commands) and, for
// kClaude and kCodex, one skill per command group,
// <skills dir>/orchestrator-<group>/SKILL.md, with the commands' usage.
// The instruction file's text is only the generated section; WriteSkills
// puts it into an existing file between its markers.
std::map<std::string, std::string> RenderSkills(const std::vector<std::string>& grants,
                                                SkillsFormat format);

// Writes RenderSkills into `dir` (created if missing), replacing an earlier
// generated section of the instruction file and keeping the rest of it, and
// removing orchestrator skills an earlier export wrote that this one does
// not (including the flat .claude/skills/orchestrator-*.md files older
// versions wrote, which no agent loads). Returns the paths written.
absl::StatusOr<std::vector<std::string>> WriteSkills(const std::string& dir,
                                                     const std::vector<std::string>& grants,
                                                     SkillsFormat format);

extern const char kSectionBegin[];
extern const char kSectionEnd[];

}  // namespace orchestrator::commands
