// skills export: exactly the allowed commands, with their usage, from the
// same table the CLI runs; an instruction file keeps what people wrote.
#include "clients/cli/skills.h"

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

TEST_F(SkillsTest, ClaudeExportListsExactlyTheAllowedCommands) {
  ASSERT_EQ(Export({"--allowed", "deploy.*,project.get", "--format", "claude"}), 0) << err_.str();
  const std::string claude = Read(std::filesystem::path(dir_) / "CLAUDE.md");
  EXPECT_EQ(ListedCommands(claude),
            (std::set<std::string>{"deploy check", "deploy trigger", "deploy status", "deploy logs",
                                   "deploy rollback", "deploy releases", "project get", "whoami"}));
  const std::string deploy =
      Read(std::filesystem::path(dir_) / ".claude/skills/orchestrator-deploy.md");
  EXPECT_THAT(deploy, HasSubstr("name: orchestrator-deploy"));
  EXPECT_THAT(deploy, HasSubstr("orchestrator deploy trigger PROJECT [--commit VALUE] [--follow]"));
  EXPECT_THAT(deploy, HasSubstr("Needs permission `deploy.trigger`."));
  const std::string project =
      Read(std::filesystem::path(dir_) / ".claude/skills/orchestrator-project.md");
  EXPECT_THAT(project, HasSubstr("## orchestrator project get"));
  EXPECT_THAT(project, Not(HasSubstr("project create")));
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(dir_) /
                                       ".claude/skills/orchestrator-infra.md"));
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
  EXPECT_EQ(Export({"--format", "claude"}), kExitUsage);
}

}  // namespace
}  // namespace orchestrator::cli
