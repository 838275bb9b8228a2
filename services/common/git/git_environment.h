#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace orchestrator::git {

// The whole environment git runs with (GitCli, the local host's `git init`,
// `git http-backend`): nothing of the host's, so no system or global
// configuration, credential helper, askpass program, terminal prompt or
// locale reaches it. With `GIT_TERMINAL_PROMPT=0` and no askpass, git asked
// for credentials fails at once ("terminal prompts disabled").
std::map<std::string, std::string> CleanGitEnvironment();

// Adds `key=value` to the configuration of the git that runs with `env`,
// through GIT_CONFIG_COUNT/KEY/VALUE: never on a command line another user
// of the machine could read in /proc (credential headers go this way).
void AddGitConfig(std::map<std::string, std::string>& env, const std::string& key,
                  const std::string& value);

// A repository's name on the local host (the project id): 1 to 128 of
// [A-Za-z0-9_-]. INVALID_ARGUMENT naming repository_name otherwise; such a
// name is safe as a single path element.
absl::Status ValidateRepositoryName(absl::string_view name);

}  // namespace orchestrator::git
