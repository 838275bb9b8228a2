// skills export: exactly the allowed commands, with their usage, from the
// same table the CLI runs; an instruction file keeps what people wrote.
#include "services/common/commands/skills.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "clients/cli/app.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace orchestrator::cli {
namespace {

using commands::kSectionBegin;

using ::testing::HasSubstr;
using ::testing::Not;

// The commands listed in the section's table: "| `orchestrator deploy trigger ...` |".
std::set<std::string> ListedCommands(const std::string& section) {
  std::set<std::string> out;
  std::regex row(R"(\| `orchestrator ([a-z-]+(?: [a-z-]+)?)[ `])");
  for (std::sregex_iterator it(section.begin(), section.end(), row), end; it != end; ++it) {
    std::string path = (*it)[1];
    // "orchestrator respond TEXT": the second word is upper case, so not matched.
    out.insert(path);
  }
  return out;
}

std::string Read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class SkillsTest : public ::testing::Test {
 protected:
  SkillsTest() {
    char tmpl[] = "/tmp/skills_test.XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  ~SkillsTest() override { std::filesystem::remove_all(dir_); }

  int Export(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"skills", "export", "--out", dir_};
    args.insert(args.end(), extra.begin(), extra.end());
    std::ostringstream out;
    return cli::Run(args, Environment{}, out, err_);
  }

  std::string dir_;
  std::ostringstream err_;
};

// The YAML front matter an agent CLI reads to list a skill: `name` and
// `description` between "---" lines at the very start of SKILL.md.
struct FrontMatter {
  bool present = false;
  std::string name, description;
};
FrontMatter ParseFrontMatter(const std::string& skill) {
  FrontMatter fm;
  std::istringstream in(skill);
  std::string line;
  if (!std::getline(in, line) || line != "---") return fm;
  while (std::getline(in, line) && line != "---") {
    if (line.rfind("name: ", 0) == 0) fm.name = line.substr(6);
    if (line.rfind("description: ", 0) == 0) {
      std::string v = line.substr(13);
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
        std::string unquoted;
        for (size_t i = 1; i + 1 < v.size(); ++i) {
          if (v[i] == '\\') ++i;
          unquoted.push_back(v[i]);
        }
        v = unquoted;
      }
      fm.description = v;
    }
  }
  fm.present = line == "---";
  return fm;
}

// Every skill an export wrote: a directory <skills>/<name>/SKILL.md whose
// front matter names it and says what it is for, within the agents' limits.
void ExpectLoadableSkills(const std::filesystem::path& skills) {
  ASSERT_TRUE(std::filesystem::is_directory(skills)) << skills;
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(skills)) {
    ++count;
    ASSERT_TRUE(entry.is_directory()) << entry.path() << " is not a skill directory";
    const std::string dir = entry.path().filename().string();
    const FrontMatter fm = ParseFrontMatter(Read(entry.path() / "SKILL.md"));
    ASSERT_TRUE(fm.present) << dir << "/SKILL.md has no front matter";
    EXPECT_EQ(fm.name, dir);
    EXPECT_TRUE(std::regex_match(fm.name, std::regex("[a-z0-9-]{1,64}"))) << fm.name;
    EXPECT_THAT(fm.description, HasSubstr("Use it"));
    EXPECT_LE(fm.description.size(), 1024u);
  }
  EXPECT_GT(count, 0);
}

TEST_F(SkillsTest, ClaudeExportListsExactlyTheAllowedCommands) {
  ASSERT_EQ(Export({"--allowed", "deploy.*,project.get", "--format", "claude"}), 0) << err_.str();
  const std::filesystem::path dir(dir_);
  const std::string claude = Read(dir / "CLAUDE.md");
  EXPECT_EQ(ListedCommands(claude),
            (std::set<std::string>{"deploy check", "deploy trigger", "deploy status", "deploy logs",
                                   "deploy rollback", "deploy releases", "project get", "whoami"}));
  // Where Claude Code loads skills from, in the shape it loads.
  ExpectLoadableSkills(dir / ".claude/skills");
  const std::string deploy = Read(dir / ".claude/skills/orchestrator-deploy/SKILL.md");
  const FrontMatter fm = ParseFrontMatter(deploy);
  EXPECT_EQ(fm.name, "orchestrator-deploy");
  EXPECT_THAT(fm.description, HasSubstr("deploy trigger"));
  EXPECT_THAT(fm.description, HasSubstr("readiness, deploys, releases, rollbacks"));
  EXPECT_THAT(
      deploy,
      HasSubstr(
          "orchestrator deploy trigger PROJECT [--commit VALUE] [--server VALUE] [--follow]"));
  EXPECT_THAT(deploy, HasSubstr("Needs permission `deploy.trigger`."));
  const std::string project = Read(dir / ".claude/skills/orchestrator-project/SKILL.md");
  EXPECT_THAT(project, HasSubstr("## orchestrator project get"));
  EXPECT_THAT(project, Not(HasSubstr("project create")));
  EXPECT_FALSE(std::filesystem::exists(dir / ".claude/skills/orchestrator-infra"));
  EXPECT_FALSE(std::filesystem::exists(dir / "AGENTS.md"));
}

TEST_F(SkillsTest, CodexExportWritesAgentsMdAndTheSkillsWhereCodexLoadsThem) {
  ASSERT_EQ(Export({"--allowed", "deploy.*,project.get", "--format", "codex"}), 0) << err_.str();
  const std::filesystem::path dir(dir_);
  const std::string agents = Read(dir / "AGENTS.md");
  EXPECT_TRUE(ListedCommands(agents).count("deploy trigger"));
  EXPECT_THAT(agents, HasSubstr(".agents/skills/"));
  ExpectLoadableSkills(dir / ".agents/skills");
  EXPECT_THAT(
      Read(dir / ".agents/skills/orchestrator-deploy/SKILL.md"),
      HasSubstr(
          "orchestrator deploy trigger PROJECT [--commit VALUE] [--server VALUE] [--follow]"));
  EXPECT_FALSE(std::filesystem::exists(dir / ".claude"));
  EXPECT_FALSE(std::filesystem::exists(dir / "CLAUDE.md"));
}

TEST_F(SkillsTest, ReExportRemovesSkillsNoLongerAllowedAndOldFlatFiles) {
  const std::filesystem::path dir(dir_);
  std::filesystem::create_directories(dir / ".claude/skills/mine");
  { std::ofstream(dir / ".claude/skills/mine/SKILL.md") << "---\nname: mine\n---\n"; }
  { std::ofstream(dir / ".claude/skills/orchestrator-deploy.md") << "an old flat skill"; }
  ASSERT_EQ(Export({"--allowed", "deploy.*,project.get", "--format", "claude"}), 0);
  ASSERT_EQ(Export({"--allowed", "project.get", "--format", "claude"}), 0);
  EXPECT_TRUE(std::filesystem::exists(dir / ".claude/skills/orchestrator-project/SKILL.md"));
  EXPECT_FALSE(std::filesystem::exists(dir / ".claude/skills/orchestrator-deploy"));
  EXPECT_FALSE(std::filesystem::exists(dir / ".claude/skills/orchestrator-deploy.md"));
  EXPECT_TRUE(std::filesystem::exists(dir / ".claude/skills/mine/SKILL.md"));  // not ours
}

TEST_F(SkillsTest, AgentsExportPutsUsageInlineAndProfilesNameTheirGrants) {
  ASSERT_EQ(Export({"--profile", "DEVELOPER", "--format", "agents"}), 0) << err_.str();
  const std::string agents = Read(std::filesystem::path(dir_) / "AGENTS.md");
  const auto listed = ListedCommands(agents);
  EXPECT_TRUE(listed.count("diagnose logs"));
  EXPECT_TRUE(listed.count("project get"));
  EXPECT_FALSE(listed.count("deploy trigger"));
  EXPECT_FALSE(listed.count("project create"));
  EXPECT_THAT(agents, HasSubstr("#### orchestrator finish"));
  EXPECT_THAT(agents,
              HasSubstr("- `--summary VALUE`: what was done, or why it could not be (required)"));
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(dir_) / ".claude"));
}

TEST_F(SkillsTest, ReExportReplacesOnlyTheGeneratedSection) {
  { std::ofstream(std::filesystem::path(dir_) / "CLAUDE.md") << "# Shop\n\nUse pnpm.\n"; }
  ASSERT_EQ(Export({"--allowed", "project.*", "--format", "claude"}), 0);
  ASSERT_EQ(Export({"--allowed", "job.get", "--format", "claude"}), 0);
  const std::string claude = Read(std::filesystem::path(dir_) / "CLAUDE.md");
  EXPECT_THAT(claude, HasSubstr("# Shop\n\nUse pnpm.\n"));
  EXPECT_EQ(ListedCommands(claude), (std::set<std::string>{"jobs get", "whoami"}));
  EXPECT_EQ(claude.find(kSectionBegin), claude.rfind(kSectionBegin));  // one section only
}

TEST_F(SkillsTest, BadExportsAreUsageErrors) {
  EXPECT_EQ(Export({"--allowed", "Deploy!", "--format", "claude"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("'Deploy!' is not a permission"));
  EXPECT_EQ(Export({"--profile", "HACKER", "--format", "claude"}), kExitUsage);
  EXPECT_EQ(Export({"--allowed", "job.get", "--format", "cursor"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("expected claude, codex or agents"));
  EXPECT_EQ(Export({"--format", "claude"}), kExitUsage);
}

}  // namespace
}  // namespace orchestrator::cli
