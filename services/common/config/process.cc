#include "services/common/config/process.h"

#include <pthread.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"

namespace orchestrator {

std::string OwnBinaryDir() {
  char path[4096];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return ".";
  std::string p(path, static_cast<size_t>(n));
  return p.substr(0, p.rfind('/'));
}
namespace {

// The repository's root as this file was compiled ("/src/"; "" when the
// compiler was given relative paths), so --help can name flag files the
// way the tree does: "gateway/main.cc".
absl::string_view SourceRoot() {
  absl::string_view root = __FILE__;
  return absl::ConsumeSuffix(&root, "services/common/config/process.cc") ? root : "";
}

// Ours relative to the root; others as Abseil shows them (leading '/' off).
std::string RelativeToSourceRoot(absl::string_view file) {
  if (const absl::string_view root = SourceRoot(); !root.empty()) absl::ConsumePrefix(&file, root);
  while (absl::ConsumePrefix(&file, "/")) {
  }
  return std::string(file);
}

// Flags of our own sources, wherever a binary defines them (main.cc, a
// component's files, the gateway's), but not Abseil's or gRPC's.
bool IsOwnFlagFile(absl::string_view file) {
  const std::string relative = RelativeToSourceRoot(file);
  for (const char* dir : {"services/", "gateway/", "clients/"}) {
    if (absl::StartsWith(relative, dir)) return true;
  }
  return false;
}

}  // namespace

void ParseCommandLineAndEnvironment(int argc, char** argv, absl::string_view usage) {
  absl::SetProgramUsageMessage(
      absl::StrCat(usage, "\nEvery flag may also come from the environment as FLAGS_<name>."));
  // --help and --helpshort list every flag of the binary, with its default
  // and help (Abseil's default looks for them in <program>.cc only).
  absl::FlagsUsageConfig config;
  config.contains_help_flags = IsOwnFlagFile;
  config.contains_helpshort_flags = IsOwnFlagFile;
  config.contains_helppackage_flags = IsOwnFlagFile;
  config.normalize_filename = RelativeToSourceRoot;
  absl::SetFlagsUsageConfig(config);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Environment first, so flags on the command line win.
  std::vector<char*> args(argv, argv + argc);
  std::vector<std::string> own;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (IsOwnFlagFile(flag->Filename())) own.push_back(std::string(name));
  }
  std::string from_env = absl::StrCat("--tryfromenv=", absl::StrJoin(own, ","));
  args.insert(args.begin() + 1, from_env.data());
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
}

TerminationSignals::TerminationSignals() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGTERM);
  sigaddset(&set_, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
}

const char* TerminationSignals::Wait() const {
  int signal = 0;
  sigwait(&set_, &signal);
  return signal == SIGTERM ? "SIGTERM" : "SIGINT";
}

absl::StatusOr<std::string> ReadSecretFile(absl::string_view flag, const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::FailedPreconditionError(absl::StrCat(flag, ": cannot read '", path, "'"));
  std::stringstream s;
  s << in.rdbuf();
  std::string value(absl::StripAsciiWhitespace(s.str()));
  if (value.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(flag, ": '", path, "' is empty"));
  }
  return value;
}

}  // namespace orchestrator
