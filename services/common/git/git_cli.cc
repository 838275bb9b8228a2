#include "services/common/git/git_cli.h"

#include <filesystem>
#include <map>
#include <optional>
#include <set>
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

// How a git command ended and what it wrote to standard output.
struct GitOutcome {
  ChildExit exit;
  std::string out;

  bool failed() const { return exit.cancelled || exit.timed_out || exit.exit_code != 0; }
};

// Runs `git`; an error only when it could not be run at all.
absl::StatusOr<GitOutcome> RunGitProcess(const std::string& what, const GitCommand& git,
                                         absl::Time deadline, const std::atomic<bool>* cancel) {
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
  return GitOutcome{*std::move(exit), std::move(out)};
}

// Runs `git`: its standard output, or the status of its failure.
absl::StatusOr<std::string> RunGit(const std::string& what, const GitCommand& git,
                                   absl::Time deadline, absl::Duration timeout,
                                   const std::atomic<bool>* cancel,
                                   const GitCredentials& credentials) {
  absl::StatusOr<GitOutcome> run = RunGitProcess(what, git, deadline, cancel);
  if (!run.ok()) return run.status();
  if (run->failed()) return FailureStatus(what, run->exit, timeout, credentials);
  return std::move(run->out);
}

// What every command here runs with: the clean environment, no hooks (a
// repository's content is never code we run), no automatic gc (it would
// outlive the command, detached).
std::map<std::string, std::string> BaseEnvironment() {
  auto env = CleanGitEnvironment();
  AddGitConfig(env, "core.hooksPath", "/dev/null");
  AddGitConfig(env, "gc.auto", "0");
  AddGitConfig(env, "maintenance.auto", "false");
  return env;
}

// The environment of a command that may reach a remote: only http(s) and
// local repositories, the credentials (if any) as an extra header.
std::map<std::string, std::string> RemoteEnvironment(const GitCredentials& credentials) {
  auto env = BaseEnvironment();
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

bool IsCommitId(absl::string_view id) {
  return id.size() == 40 && id.find_first_not_of("0123456789abcdef") == absl::string_view::npos;
}

// A revision, ref or refspec as git is given it: set, never read as an
// option, no whitespace or control characters.
absl::Status CheckArgument(absl::string_view field, absl::string_view value) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": must be set"));
  if (value.front() == '-') {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must not start with '-'"));
  }
  for (char c : value) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": no whitespace or control characters"));
    }
  }
  return absl::OkStatus();
}

// A full ref name ("refs/heads/main").
absl::Status CheckRef(absl::string_view field, absl::string_view ref) {
  if (auto s = CheckArgument(field, ref); !s.ok()) return s;
  if (!absl::StartsWith(ref, "refs/") || absl::StrContains(ref, "..") ||
      ref.find_first_of(":^~?*[\\") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be a full ref name, e.g. refs/heads/main"));
  }
  return absl::OkStatus();
}

// The git directory of the repository at `dir`: its .git, or `dir` itself
// when it is bare.
absl::StatusOr<std::string> GitDirOf(const std::string& dir) {
  if (dir.empty()) return absl::InvalidArgumentError("dir: must be set");
  const fs::path abs = fs::absolute(dir).lexically_normal();
  std::error_code ec;
  if (fs::is_directory(abs / ".git", ec)) return (abs / ".git").string();
  if (fs::is_regular_file(abs / "HEAD", ec) && fs::is_directory(abs / "objects", ec)) {
    return abs.string();
  }
  return absl::FailedPreconditionError(absl::StrCat(dir, ": not a git repository"));
}

// The environment of a command on the repository whose git directory is
// `git_dir` alone (no remote).
std::map<std::string, std::string> LocalEnvironment(const std::string& git_dir) {
  auto env = BaseEnvironment();
  env["GIT_DIR"] = git_dir;
  return env;
}

// git says a revision it was given is not there.
bool UnknownRevision(const ChildExit& exit) {
  const std::string said = absl::AsciiStrToLower(exit.stderr_tail);
  return exit.exit_code == 128 &&
         (absl::StrContains(said, "not a valid") || absl::StrContains(said, "bad revision") ||
          absl::StrContains(said, "unknown revision") || absl::StrContains(said, "bad object") ||
          absl::StrContains(said, "ambiguous argument"));
}

// Why a push was refused, ref by ref, from `git push --porcelain`: lines
// "!\t<src>:<dst>\t[rejected] (non-fast-forward)" and the like.
struct Refusal {
  std::vector<std::string> refs;  // "<dst> [rejected] (reason)"
  bool remote = false;            // the remote refused (a hook, its policy)
  bool stale = false;             // the remote's refs are not what the push expected
};

Refusal RefusalOf(const std::string& porcelain) {
  Refusal refusal;
  for (absl::string_view line : absl::StrSplit(porcelain, '\n', absl::SkipEmpty())) {
    if (!absl::StartsWith(line, "!\t")) continue;
    std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits('\t', 2));
    if (parts.size() < 3) continue;
    const absl::string_view spec = parts[1];
    const absl::string_view dst = spec.substr(spec.find(':') + 1);
    const absl::string_view summary = absl::StripAsciiWhitespace(parts[2]);
    refusal.refs.push_back(absl::StrCat(dst, " ", summary));
    if (absl::StartsWith(summary, "[remote ")) {
      refusal.remote = true;
    } else if (absl::StrContains(summary, "(non-fast-forward)") ||
               absl::StrContains(summary, "(fetch first)") ||
               absl::StrContains(summary, "(stale info)")) {
      refusal.stale = true;
    }
  }
  return refusal;
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
  if (ref.empty()) return absl::InvalidArgumentError("ref: must be set");
  auto heads = RemoteHeads(url, {ref}, credentials);
  if (!heads.ok()) return heads.status();
  auto it = heads->find(ref);
  if (it == heads->end()) {
    return absl::NotFoundError(absl::StrCat("git ls-remote ", Shown(url), ": no ref ", ref));
  }
  return it->second;
}

absl::StatusOr<std::map<std::string, std::string>> GitCli::RemoteHeads(
    const std::string& url, const std::vector<std::string>& refs,
    const GitCredentials& credentials) const {
  absl::StatusOr<std::string> remote = CheckUrl(url);
  if (!remote.ok()) return remote.status();
  if (refs.empty()) return absl::InvalidArgumentError("refs: at least one");
  std::vector<std::string> args = {"ls-remote", "--", *remote};
  for (const std::string& ref : refs) {
    if (ref.empty()) return absl::InvalidArgumentError("refs: must be set");
    args.push_back(ref);
    args.push_back(ref + "^{}");
  }
  auto env = RemoteEnvironment(credentials);
  // Version 0 lists the refs in the one advertisement (v2 asks again).
  AddGitConfig(env, "protocol.version", "0");
  auto out = RunGit(absl::StrCat("git ls-remote ", Shown(url)), {.args = args, .env = env},
                    absl::Now() + timeout_, timeout_, cancel_, credentials);
  if (!out.ok()) return out.status();
  // "<id>\t<ref>" lines; an annotated tag's commit is on its "^{}" line.
  std::map<std::string, std::string> ids, peeled;
  for (absl::string_view line : absl::StrSplit(*out, '\n', absl::SkipEmpty())) {
    std::pair<std::string, std::string> parts = absl::StrSplit(line, absl::MaxSplits('\t', 1));
    if (absl::EndsWith(parts.second, "^{}")) {
      peeled[parts.second.substr(0, parts.second.size() - 3)] = parts.first;
    } else {
      ids[parts.second] = parts.first;
    }
  }
  std::map<std::string, std::string> heads;
  for (const std::string& ref : refs) {
    if (auto p = peeled.find(ref); p != peeled.end()) {
      heads[ref] = p->second;
    } else if (auto i = ids.find(ref); i != ids.end()) {
      heads[ref] = i->second;
    }
  }
  return heads;
}

absl::Status GitCli::Fetch(const std::string& dir, const std::string& url,
                           const std::vector<std::string>& refspecs,
                           const GitCredentials& credentials) const {
  absl::StatusOr<std::string> remote = CheckUrl(url);
  if (!remote.ok()) return remote.status();
  if (refspecs.empty()) return absl::InvalidArgumentError("refspecs: at least one");
  for (size_t i = 0; i < refspecs.size(); ++i) {
    if (auto s = CheckArgument(absl::StrCat("refspecs[", i, "]"), refspecs[i]); !s.ok()) return s;
  }
  if (dir.empty()) return absl::InvalidArgumentError("dir: must be set");
  const std::string abs_dir = fs::absolute(dir).lexically_normal().string();
  const absl::Time deadline = absl::Now() + timeout_;
  std::error_code ec;
  if (!fs::exists(abs_dir, ec) || fs::is_empty(abs_dir, ec)) {
    if (auto s = RunGit("git init --bare",
                        {.args = {"init", "-q", "--bare", "--template=", "--", abs_dir},
                         .env = BaseEnvironment()},
                        deadline, timeout_, cancel_, {});
        !s.ok()) {
      return s.status();
    }
  }
  absl::StatusOr<std::string> git_dir = GitDirOf(abs_dir);
  if (!git_dir.ok()) return git_dir.status();
  auto env = RemoteEnvironment(credentials);
  env["GIT_DIR"] = *git_dir;
  std::vector<std::string> args = {"fetch", "-q", "--no-tags", "--", *remote};
  args.insert(args.end(), refspecs.begin(), refspecs.end());
  return RunGit(absl::StrCat("git fetch ", Shown(url)), {.args = args, .env = env}, deadline,
                timeout_, cancel_, credentials)
      .status();
}

absl::StatusOr<std::string> GitCli::FetchBundle(const std::string& dir,
                                                const std::string& bundle_path,
                                                const std::string& ref) const {
  if (auto s = CheckRef("ref", ref); !s.ok()) return s;
  absl::StatusOr<std::string> git_dir = GitDirOf(dir);
  if (!git_dir.ok()) return git_dir.status();
  if (bundle_path.empty()) return absl::InvalidArgumentError("bundle_path: must be set");
  const std::string bundle = fs::absolute(bundle_path).lexically_normal().string();
  std::error_code ec;
  if (!fs::is_regular_file(bundle, ec)) {
    return absl::FailedPreconditionError(absl::StrCat("no bundle at ", bundle_path));
  }
  const absl::Time deadline = absl::Now() + timeout_;
  auto env = LocalEnvironment(*git_dir);
  AddGitConfig(env, "protocol.allow", "never");
  AddGitConfig(env, "protocol.file.allow", "always");
  // What an agent made is checked as any pushed object would be.
  AddGitConfig(env, "fetch.fsckObjects", "true");
  const std::string what = absl::StrCat("the bundle ", bundle_path);
  // Not -q: it would keep the reason (e.g. the missing prerequisites) to itself.
  auto verified =
      RunGitProcess(absl::StrCat("git bundle verify ", bundle_path),
                    {.args = {"bundle", "verify", bundle}, .env = env}, deadline, cancel_);
  if (!verified.ok()) return verified.status();
  if (verified->failed()) {
    if (verified->exit.cancelled || verified->exit.timed_out) {
      return FailureStatus(absl::StrCat("git bundle verify ", bundle_path), verified->exit,
                           timeout_, {});
    }
    return absl::FailedPreconditionError(absl::StrCat(what, " does not apply to ", dir, ": ",
                                                      GitMessage(verified->exit.stderr_tail)));
  }
  auto heads = RunGit(absl::StrCat("git bundle list-heads ", bundle_path),
                      {.args = {"bundle", "list-heads", bundle, ref}, .env = env}, deadline,
                      timeout_, cancel_, {});
  if (!heads.ok()) return heads.status();
  std::string id;
  for (absl::string_view line : absl::StrSplit(*heads, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> parts =
        absl::StrSplit(line, absl::MaxSplits(' ', 1));
    if (parts.second == ref) id = std::string(parts.first);
  }
  if (id.empty()) return absl::NotFoundError(absl::StrCat(what, " has no ref ", ref));
  if (auto s = RunGit(
          absl::StrCat("git fetch ", bundle_path),
          {.args = {"fetch", "-q", "--no-tags", "--", bundle, absl::StrCat("+", ref, ":", ref)},
           .env = env},
          deadline, timeout_, cancel_, {});
      !s.ok()) {
    return s.status();
  }
  return ResolveCommit(dir, ref);
}

absl::Status GitCli::PushRefspecs(const std::string& dir, const std::string& url,
                                  const std::vector<std::string>& refspecs,
                                  const PushOptions& options,
                                  const GitCredentials& credentials) const {
  absl::StatusOr<std::string> remote = CheckUrl(url);
  if (!remote.ok()) return remote.status();
  if (refspecs.empty()) return absl::InvalidArgumentError("refspecs: at least one");
  std::set<std::string> destinations;
  for (size_t i = 0; i < refspecs.size(); ++i) {
    const std::string field = absl::StrCat("refspecs[", i, "]");
    const std::string& spec = refspecs[i];
    if (absl::StartsWith(spec, "+")) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": a forced refspec is never pushed (force_with_lease names what may move)"));
    }
    if (auto s = CheckArgument(field, spec); !s.ok()) return s;
    const size_t colon = spec.find(':');
    if (colon == std::string::npos || colon == 0) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": must be <commit or ref>:<ref>"));
    }
    if (auto s = CheckRef(field, spec.substr(colon + 1)); !s.ok()) return s;
    destinations.insert(spec.substr(colon + 1));
  }
  std::vector<std::string> args = {"push", "--porcelain", "--no-progress"};
  if (options.atomic) args.push_back("--atomic");
  for (const auto& [ref, expected] : options.force_with_lease) {
    if (!destinations.contains(ref)) {
      return absl::InvalidArgumentError(
          absl::StrCat("force_with_lease: ", ref, " is not a destination of the refspecs"));
    }
    if (!expected.empty() && !IsCommitId(expected)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "force_with_lease[", ref, "]: a full commit id (40 of 0-9a-f), or \"\" for none"));
    }
    args.push_back(absl::StrCat("--force-with-lease=", ref, ":", expected));
  }
  args.push_back("--");
  args.push_back(*remote);
  args.insert(args.end(), refspecs.begin(), refspecs.end());
  absl::StatusOr<std::string> git_dir = GitDirOf(dir);
  if (!git_dir.ok()) return git_dir.status();
  auto env = RemoteEnvironment(credentials);
  env["GIT_DIR"] = *git_dir;
  const std::string what = absl::StrCat("git push to ", Shown(url));
  auto run = RunGitProcess(what, {.args = args, .env = env}, absl::Now() + timeout_, cancel_);
  if (!run.ok()) return run.status();
  if (!run->failed()) return absl::OkStatus();
  const Refusal refusal = RefusalOf(run->out);
  if (run->exit.cancelled || run->exit.timed_out || refusal.refs.empty()) {
    return FailureStatus(what, run->exit, timeout_, credentials);
  }
  const std::string message =
      Redact(absl::StrCat(what, ": ", absl::StrJoin(refusal.refs, "; "), "; ",
                          GitMessage(Redact(run->exit.stderr_tail, credentials))),
             credentials);
  if (refusal.stale && !refusal.remote) return absl::AbortedError(message);
  return absl::FailedPreconditionError(message);
}

absl::StatusOr<std::string> GitCli::ResolveCommit(const std::string& dir,
                                                  const std::string& rev) const {
  if (auto s = CheckArgument("rev", rev); !s.ok()) return s;
  absl::StatusOr<std::string> git_dir = GitDirOf(dir);
  if (!git_dir.ok()) return git_dir.status();
  const std::string what = absl::StrCat("git rev-parse ", rev);
  auto run = RunGitProcess(what,
                           {.args = {"rev-parse", "--verify", "-q", rev + "^{commit}"},
                            .env = LocalEnvironment(*git_dir)},
                           absl::Now() + timeout_, cancel_);
  if (!run.ok()) return run.status();
  if (run->exit.exit_code == 1 || UnknownRevision(run->exit)) {
    return absl::NotFoundError(absl::StrCat(rev, " names no commit in ", dir));
  }
  if (run->failed()) return FailureStatus(what, run->exit, timeout_, {});
  const std::string id(absl::StripAsciiWhitespace(run->out));
  if (!IsCommitId(id)) return absl::InternalError(absl::StrCat(what, ": answered '", id, "'"));
  return id;
}

absl::StatusOr<bool> GitCli::IsAncestor(const std::string& dir, const std::string& ancestor,
                                        const std::string& descendant) const {
  if (auto s = CheckArgument("ancestor", ancestor); !s.ok()) return s;
  if (auto s = CheckArgument("descendant", descendant); !s.ok()) return s;
  absl::StatusOr<std::string> git_dir = GitDirOf(dir);
  if (!git_dir.ok()) return git_dir.status();
  const std::string what = absl::StrCat("git merge-base --is-ancestor ", ancestor, " ", descendant);
  auto run = RunGitProcess(what,
                           {.args = {"merge-base", "--is-ancestor", ancestor, descendant},
                            .env = LocalEnvironment(*git_dir)},
                           absl::Now() + timeout_, cancel_);
  if (!run.ok()) return run.status();
  if (!run->failed()) return true;
  if (!run->exit.cancelled && !run->exit.timed_out && run->exit.exit_code == 1) return false;
  if (UnknownRevision(run->exit)) {
    return absl::NotFoundError(absl::StrCat(what, ": ", GitMessage(run->exit.stderr_tail)));
  }
  return FailureStatus(what, run->exit, timeout_, {});
}

absl::StatusOr<std::vector<std::string>> GitCli::LogGrep(const std::string& dir,
                                                         const std::string& from,
                                                         const std::string& to,
                                                         const std::string& line) const {
  if (auto s = CheckArgument("to", to); !s.ok()) return s;
  if (!from.empty()) {
    if (auto s = CheckArgument("from", from); !s.ok()) return s;
  }
  if (line.empty() || line.find_first_of("\r\n") != std::string::npos) {
    return absl::InvalidArgumentError("line: one line of text");
  }
  absl::StatusOr<std::string> git_dir = GitDirOf(dir);
  if (!git_dir.ok()) return git_dir.status();
  const std::string range = from.empty() ? to : absl::StrCat(from, "..", to);
  const std::string what = absl::StrCat("git log ", range);
  // git picks the commits that mention `line`; each is then checked for it
  // as a whole line.
  auto run = RunGitProcess(what,
                           {.args = {"log", "--format=%H%x00%B%x1e", "--fixed-strings",
                                     absl::StrCat("--grep=", line), range, "--"},
                            .env = LocalEnvironment(*git_dir)},
                           absl::Now() + timeout_, cancel_);
  if (!run.ok()) return run.status();
  if (run->failed()) {
    if (UnknownRevision(run->exit)) {
      return absl::NotFoundError(absl::StrCat(what, ": ", GitMessage(run->exit.stderr_tail)));
    }
    return FailureStatus(what, run->exit, timeout_, {});
  }
  std::vector<std::string> commits;
  for (absl::string_view record : absl::StrSplit(run->out, '\x1e', absl::SkipWhitespace())) {
    record = absl::StripLeadingAsciiWhitespace(record);
    const size_t nul = record.find('\0');
    if (nul == absl::string_view::npos) continue;
    for (absl::string_view l : absl::StrSplit(record.substr(nul + 1), '\n')) {
      if (absl::StripTrailingAsciiWhitespace(l) == line) {
        commits.emplace_back(record.substr(0, nul));
        break;
      }
    }
  }
  return commits;
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
