#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "services/common/git/git_environment.h"
#include "services/common/process/child_process.h"

namespace orchestrator::testing {

struct GitRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// `git <args>` in `cwd` as a user would run it, but with nothing of this
// machine's configuration (and a fixed identity), plus `env` and the
// settings `config` (as `git -c`, but not on the command line); at most a
// minute.
inline GitRun RunGit(const std::vector<std::string>& args, const std::string& cwd = "/",
                     const std::map<std::string, std::string>& env = {},
                     const std::map<std::string, std::string>& config = {}) {
  ChildCommand command;
  command.argv = {"git"};
  command.argv.insert(command.argv.end(), args.begin(), args.end());
  command.env = git::CleanGitEnvironment();
  command.env["GIT_AUTHOR_NAME"] = command.env["GIT_COMMITTER_NAME"] = "Test";
  command.env["GIT_AUTHOR_EMAIL"] = command.env["GIT_COMMITTER_EMAIL"] = "test@example.com";
  git::AddGitConfig(command.env, "init.defaultBranch", "main");
  for (const auto& [k, v] : env) command.env[k] = v;
  for (const auto& [k, v] : config) git::AddGitConfig(command.env, k, v);
  command.inherit_environment = false;
  command.cwd = cwd;
  command.deadline = absl::Now() + absl::Minutes(1);
  command.stderr_bytes = 1 << 20;
  GitRun run;
  command.on_output = [&run](absl::string_view bytes) {
    run.out.append(bytes.data(), bytes.size());
  };
  auto exit = RunChild(command);
  if (!exit.ok()) {
    run.err = std::string(exit.status().message());
    return run;
  }
  run.exit_code = exit->exit_code;
  run.err = exit->stderr_tail;
  return run;
}

}  // namespace orchestrator::testing
