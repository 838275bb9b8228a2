#include "services/common/git/git_environment.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace orchestrator::git {

std::map<std::string, std::string> CleanGitEnvironment() {
  return {
      {"PATH", "/usr/bin:/bin"},    {"HOME", "/nonexistent"},           {"LC_ALL", "C"},
      {"GIT_CONFIG_NOSYSTEM", "1"}, {"GIT_CONFIG_GLOBAL", "/dev/null"}, {"GIT_ATTR_NOSYSTEM", "1"},
      {"GIT_TERMINAL_PROMPT", "0"}, {"GIT_NO_REPLACE_OBJECTS", "1"},
  };
}

void AddGitConfig(std::map<std::string, std::string>& env, const std::string& key,
                  const std::string& value) {
  int count = 0;
  if (auto it = env.find("GIT_CONFIG_COUNT"); it != env.end()) {
    (void)absl::SimpleAtoi(it->second, &count);
  }
  env[absl::StrCat("GIT_CONFIG_KEY_", count)] = key;
  env[absl::StrCat("GIT_CONFIG_VALUE_", count)] = value;
  env["GIT_CONFIG_COUNT"] = absl::StrCat(count + 1);
}

absl::Status ValidateRepositoryName(absl::string_view name) {
  if (name.empty() || name.size() > 128) {
    return absl::InvalidArgumentError("repository_name: must be 1 to 128 characters");
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          "repository_name: only letters, digits, '_' and '-' are allowed");
    }
  }
  return absl::OkStatus();
}

}  // namespace orchestrator::git
