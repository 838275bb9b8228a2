#include "services/common/git/git_cli.h"

#include <filesystem>
#include <map>
#include <optional>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "services/common/git/git_environment.h"
#include "services/common/process/child_process.h"

namespace orchestrator::git {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxStdout = 1 << 20;
constexpr size_t kMaxMessage = 2048;

// `text` with the credential header, its value and the secret it ends with
// (the token after "Bearer " or "Basic ") cut out, and any user:password@ of
// a URL: what an error may carry.
std::string Redact(std::string text, const GitCredentials& credentials) {
  const std::string& header = credentials.http_header;
  if (!header.empty()) {
    std::vector<std::string> secrets = {header};
    if (size_t colon = header.find(':'); colon != std::string::npos) {
      secrets.push_back(std::string(absl::StripAsciiWhitespace(header.substr(colon + 1))));
    }
    if (size_t space = header.rfind(' '); space != std::string::npos) {
      secrets.push_back(header.substr(space + 1));
    }
    for (const std::string& secret : secrets) {
      if (secret.size() >= 4) absl::StrReplaceAll({{secret, "[redacted]"}}, &text);
    }
  }
  for (size_t at = text.find("://"); at != std::string::npos; at = text.find("://", at + 3)) {
    const size_t start = at + 3;
    const size_t end = text.find_first_of("/ '\"\n", start);
    const size_t user = text.rfind('@', end == std::string::npos ? text.size() : end);
    if (user != std::string::npos && user >= start) text.replace(start, user - start, "[redacted]");
  }
  return text;
}

// A URL as errors name it (git's own messages are redacted the same way).
std::string Shown(const std::string& url) { return Redact(url, {}); }

// What git said that matters to a person: its error lines and the remote's,
// else the end of what it wrote.
std::string GitMessage(const std::string& stderr_text) {
  std::vector<std::string> kept;
  for (absl::string_view line : absl::StrSplit(stderr_text, absl::ByAnyChar("\r\n"))) {
    line = absl::StripAsciiWhitespace(line);
    if (absl::StartsWith(line, "remote:") || absl::StartsWith(line, "fatal:") ||
        absl::StartsWith(line, "error:") || absl::StartsWith(line, "!")) {
      // "remote:" alone, or the remote's blank lines.
      if (absl::StripAsciiWhitespace(absl::StripPrefix(line, "remote:")).empty()) continue;
      kept.emplace_back(line);
    }
  }
  std::string message = kept.empty() ? std::string(absl::StripAsciiWhitespace(stderr_text))
                                     : absl::StrJoin(kept, "; ");
  if (message.size() > kMaxMessage) message = "..." + message.substr(message.size() - kMaxMessage);
  return message;
}

// The status of a git command that failed, by what git said (see git_cli.h).
absl::Status FailureStatus(const std::string& what, const ChildExit& exit, absl::Duration timeout,
                           const GitCredentials& credentials) {
  if (exit.cancelled) return absl::CancelledError(absl::StrCat(what, ": cancelled"));
  if (exit.timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat(what, ": no answer within ", absl::FormatDuration(timeout)));
  }
  const std::string message = Redact(
      absl::StrCat(what, ": ",
                   exit.exit_code == 127 && exit.stderr_tail.find("git:") != std::string::npos
                       ? "git is not installed"
                       : GitMessage(Redact(exit.stderr_tail, credentials))),
      credentials);
  const std::string said = absl::AsciiStrToLower(exit.stderr_tail);
  auto any = [&said](std::initializer_list<absl::string_view> needles) {
    for (absl::string_view needle : needles) {
      if (absl::StrContains(said, needle)) return true;
    }
    return false;
  };
  // A refusal first: the remote's own words (a hook's) may say anything.
  if (any({"[rejected]", "[remote rejected]", "hook declined", "non-fast-forward",
           "failed to push some refs"})) {
    return absl::FailedPreconditionError(message);
  }
  if (any({"returned error: 401", "authentication failed", "could not read username",
           "could not read password", "terminal prompts disabled"})) {
    return absl::PermissionDeniedError(message);
  }
  if (any({"returned error: 404", "not found", "does not appear to be a git repository",
           "does not exist", "is this a git repository", "couldn't find remote ref"})) {
    return absl::NotFoundError(message);
  }
  if (any({"returned error: 403"})) return absl::FailedPreconditionError(message);
  if (any({"could not resolve", "failed to connect", "couldn't connect", "connection refused",
           "connection timed out", "timed out", "network is unreachable", "no route to host",
           "empty reply from server", "connection reset", "recv failure", "send failure",
           "returned error: 502", "returned error: 503", "returned error: 504",
           "returned error: 429", "the remote end hung up unexpectedly"})) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

// One git command with the clean environment (git_environment.h), under
// one deadline; its standard output, bounded.
struct GitCommand {
  std::vector<std::string> args;  // after "git"
  std::map<std::string, std::string> env;
  std::string cwd = "/";
  std::optional<std::string> stdin_bytes = std::nullopt;
};

absl::StatusOr<std::string> RunGit(const std::string& what, const GitCommand& git,
                                   absl::Time deadline, absl::Duration timeout,
                                   const std::atomic<bool>* cancel,
                                   const GitCredentials& credentials) {
  ChildCommand command;
  command.argv = {"git"};
  command.argv.insert(command.argv.end(), git.args.begin(), git.args.end());
  command.env = git.env;
  command.inherit_environment = false;
  command.cwd = git.cwd;
  command.stdin_bytes = git.stdin_bytes;
  command.deadline = deadline;
  command.cancel = cancel;
  command.stderr_bytes = 64 << 10;
  std::string out;
  command.on_output = [&out](absl::string_view bytes) {
    out.append(bytes.data(), std::min(bytes.size(), kMaxStdout - out.size()));
  };
  absl::StatusOr<ChildExit> exit = RunChild(command);
  if (!exit.ok()) {
    return absl::Status(exit.status().code(), absl::StrCat(what, ": ", exit.status().message()));
  }
  if (exit->cancelled || exit->timed_out || exit->exit_code != 0) {
    return FailureStatus(what, *exit, timeout, credentials);
  }
  return out;
}

// The environment of a command that may reach a remote: only http(s) and
// local repositories, the credentials (if any) as an extra header.
std::map<std::string, std::string> RemoteEnvironment(const GitCredentials& credentials) {
  auto env = CleanGitEnvironment();
  AddGitConfig(env, "core.hooksPath", "/dev/null");
  AddGitConfig(env, "protocol.allow", "never");
  AddGitConfig(env, "protocol.http.allow", "always");
  AddGitConfig(env, "protocol.https.allow", "always");
  AddGitConfig(env, "protocol.file.allow", "always");
  AddGitConfig(env, "credential.helper", "");
  AddGitConfig(env, "advice.detachedHead", "false");
  // A stalled transfer ends on its own, even in a git helper process that
  // outlived us (a SIGKILLed caller cannot stop its process group).
  AddGitConfig(env, "http.lowSpeedLimit", "1");
  AddGitConfig(env, "http.lowSpeedTime", "60");
  if (!credentials.http_header.empty()) {
    AddGitConfig(env, "http.extraHeader", credentials.http_header);
  }
  return env;
}

// `url` as git is given it: a URL, or a local path made absolute (git runs
// in "/", so that no repository around its working directory is read).
absl::StatusOr<std::string> CheckUrl(const std::string& url) {
  if (url.empty() || url.front() == '-') {
    return absl::InvalidArgumentError("url: must be a repository URL or path");
  }
  if (absl::StrContains(url, "://")) return url;
  return fs::absolute(url).lexically_normal().string();
}

}  // namespace

absl::Status GitCli::Push(const std::string& dir, const std::string& url, const std::string& branch,
                          const GitCredentials& credentials) const {
  absl::StatusOr<std::string> remote = CheckUrl(url);
  if (!remote.ok()) return remote.status();
  if (branch.empty() || branch.front() == '-') {
    return absl::InvalidArgumentError("branch: must be a branch name");
  }
  const std::string abs_dir = fs::absolute(dir).lexically_normal().string();
  std::error_code ec;
  if (!fs::is_directory(abs_dir + "/.git", ec)) {
    return absl::FailedPreconditionError(absl::StrCat("push from ", dir, ": not a repository"));
  }
  auto env = RemoteEnvironment(credentials);
  env["GIT_DIR"] = abs_dir + "/.git";
  env["GIT_WORK_TREE"] = abs_dir;
  const std::string refspec = absl::StrCat("refs/heads/", branch, ":refs/heads/", branch);
  return RunGit(absl::StrCat("git push to ", Shown(url)),
                {.args = {"push", "--no-progress", "--", *remote, refspec}, .env = env},
                absl::Now() + timeout_, timeout_, cancel_, credentials)
      .status();
}

absl::StatusOr<std::string> GitCli::RemoteHead(const std::string& url, const std::string& ref,
                                               const GitCredentials& credentials) const {
  absl::StatusOr<std::string> remote = CheckUrl(url);
  if (!remote.ok()) return remote.status();
  if (ref.empty()) return absl::InvalidArgumentError("ref: must be set");
  const std::string what = absl::StrCat("git ls-remote ", Shown(url));
  auto env = RemoteEnvironment(credentials);
  // Version 0 lists the refs in the one advertisement (v2 asks again).
  AddGitConfig(env, "protocol.version", "0");
  auto out = RunGit(what, {.args = {"ls-remote", "--", *remote, ref, ref + "^{}"}, .env = env},
                    absl::Now() + timeout_, timeout_, cancel_, credentials);
  if (!out.ok()) return out.status();
  // "<id>\t<ref>" lines; an annotated tag's commit is on its "^{}" line.
  std::string id, peeled;
  for (absl::string_view line : absl::StrSplit(*out, '\n', absl::SkipEmpty())) {
    std::pair<std::string, std::string> parts = absl::StrSplit(line, absl::MaxSplits('\t', 1));
    if (parts.second == ref) id = parts.first;
    if (parts.second == ref + "^{}") peeled = parts.first;
  }
  if (!peeled.empty()) return peeled;
  if (id.empty()) return absl::NotFoundError(absl::StrCat(what, ": no ref ", ref));
  return id;
}

absl::Status GitCli::CloneAt(const std::string& url, const std::string& ref, const std::string& dir,
                             const GitCredentials& credentials) const {
  absl::StatusOr<std::string> remote = CheckUrl(url);
  if (!remote.ok()) return remote.status();
  if (ref.empty() || ref.front() == '-') return absl::InvalidArgumentError("ref: must be set");
  if (dir.empty()) return absl::InvalidArgumentError("dir: must be set");
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    return absl::FailedPreconditionError(absl::StrCat("clone into ", dir, ": it already exists"));
  }
  const std::string abs_dir = fs::absolute(dir).lexically_normal().string();
  return RunGit(absl::StrCat("git clone ", Shown(url), " at ", ref),
                {.args = {"clone", "-q", "--depth", "1", "--branch", ref, "--", *remote, abs_dir},
                 .env = RemoteEnvironment(credentials)},
                absl::Now() + timeout_, timeout_, cancel_, credentials)
      .status();
}

absl::Status GitCli::CheckoutCommit(const std::string& url, const std::string& commit,
                                    const std::string& dir,
                                    const GitCredentials& credentials) const {
  absl::StatusOr<std::string> remote = CheckUrl(url);
  if (!remote.ok()) return remote.status();
  if (commit.size() != 40 || commit.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return absl::InvalidArgumentError("commit: a full commit id (40 of 0-9a-f)");
  }
  if (dir.empty()) return absl::InvalidArgumentError("dir: must be set");
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("checkout into ", dir, ": it already exists"));
  }
  const std::string abs_dir = fs::absolute(dir).lexically_normal().string();
  const absl::Time deadline = absl::Now() + timeout_;
  auto env = RemoteEnvironment(credentials);
  AddGitConfig(env, "init.defaultBranch", "main");
  if (auto s =
          RunGit("git init", {.args = {"init", "-q", "--template=", "--", abs_dir}, .env = env},
                 deadline, timeout_, cancel_, {});
      !s.ok()) {
    return s.status();
  }
  env["GIT_DIR"] = abs_dir + "/.git";
  env["GIT_WORK_TREE"] = abs_dir;
  const std::string what = absl::StrCat("git fetch ", Shown(url));
  // The commit alone when the server lets us ask for it; else its branches.
  if (!RunGit(what, {.args = {"fetch", "-q", "--depth", "1", "--", *remote, commit}, .env = env},
              deadline, timeout_, cancel_, credentials)
           .ok()) {
    if (auto s =
            RunGit(what,
                   {.args = {"fetch", "-q", "--", *remote, "+refs/heads/*:refs/remotes/origin/*"},
                    .env = env},
                   deadline, timeout_, cancel_, credentials);
        !s.ok()) {
      return s.status();
    }
  }
  auto checkout =
      RunGit(absl::StrCat("git checkout ", commit),
             {.args = {"checkout", "-q", "--detach", commit}, .env = env, .cwd = abs_dir}, deadline,
             timeout_, cancel_, {});
  if (!checkout.ok()) {
    // Absent only when git does not have it; anything else keeps its code.
    auto has =
        RunGit("git cat-file", {.args = {"cat-file", "-e", commit + "^{commit}"}, .env = env},
               deadline, timeout_, cancel_, {});
    if (!has.ok() && has.status().code() != absl::StatusCode::kDeadlineExceeded &&
        has.status().code() != absl::StatusCode::kCancelled) {
      return absl::NotFoundError(absl::StrCat("commit ", commit, " is not in ", Shown(url)));
    }
    return checkout.status();
  }
  return absl::OkStatus();
}

}  // namespace orchestrator::git
