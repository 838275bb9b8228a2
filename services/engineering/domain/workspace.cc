#include "services/engineering/domain/workspace.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "services/engineering/domain/test_report.h"

namespace orchestrator::engineering {
namespace {

constexpr absl::Duration kGitTimeout = absl::Minutes(5);

// Git as the platform runs it in the sandbox: no hooks, no pager, no
// prompts, whatever the repository's own configuration says.
std::vector<std::string> GitArgv(std::vector<std::string> args) {
  std::vector<std::string> argv = {
      "git",           "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c",
      "core.pager=cat"};
  argv.insert(argv.end(), std::make_move_iterator(args.begin()),
              std::make_move_iterator(args.end()));
  return argv;
}

std::string Trimmed(absl::string_view s) { return std::string(absl::StripAsciiWhitespace(s)); }

bool IsCommitId(absl::string_view s) {
  if (s.size() != 40 && s.size() != 64) return false;
  for (char c : s) {
    if (!absl::ascii_isxdigit(c) || absl::ascii_isupper(c)) return false;
  }
  return true;
}

}  // namespace

std::vector<std::string> Workspace::OnLocalLoopback(std::vector<std::string> argv) {
  // Both spellings: tools read either, and the runner sets both empty.
  std::vector<std::string> out = {"env", "NO_PROXY=localhost,127.0.0.1,::1",
                                  "no_proxy=localhost,127.0.0.1,::1"};
  out.insert(out.end(), std::make_move_iterator(argv.begin()), std::make_move_iterator(argv.end()));
  return out;
}

absl::StatusOr<CommandRun> Workspace::Run(
    std::vector<std::string> argv, const std::string& dir, absl::Duration timeout,
    bool merge_stderr, bool with_token, const std::string& stdin_bytes, size_t max_output,
    const std::function<void(const std::string&)>& on_output) {
  agents::v1::RunCommandRequest req;
  req.set_worker_id(worker_id_);
  auto* command = req.mutable_command();
  for (auto& a : argv) command->add_argv(std::move(a));
  command->set_working_directory(dir);
  command->set_stdin(stdin_bytes);
  command->set_with_worker_token(with_token);
  command->set_merge_stderr(merge_stderr);
  *req.mutable_timeout() =
      google::protobuf::util::TimeUtil::MillisecondsToDuration(absl::ToInt64Milliseconds(timeout));
  CommandRun run;
  bool overflowed = false;
  auto result = agents_->RunCommand(
      owner_id_, req,
      [&](const agents::v1::CommandOutput& out) {
        if (out.stderr()) return;
        if (max_output == 0) {
          // Not kept: on_output has it.
        } else if (run.output.size() + out.data().size() > max_output) {
          overflowed = true;
        } else {
          run.output.append(out.data());
        }
        if (on_output) on_output(out.data());
      },
      cancel_);
  if (!result.ok()) return result.status();
  run.result = *std::move(result);
  if (overflowed) {
    return absl::FailedPreconditionError(
        absl::StrCat("`", command->argv(0), "` wrote more than ", max_output, " bytes"));
  }
  return run;
}

absl::StatusOr<std::string> Workspace::Git(std::vector<std::string> args,
                                           const std::string& stdin_bytes, size_t max_output,
                                           std::vector<std::pair<std::string, std::string>> env) {
  const std::string what = absl::StrCat("git ", args.empty() ? "" : args[0]);
  auto run = [&]() -> absl::StatusOr<CommandRun> {
    if (env.empty()) {
      return Run(GitArgv(std::move(args)), kRepoDir, kGitTimeout, false, false, stdin_bytes,
                 max_output);
    }
    // Environment only through `env`, never the argv: git reads its
    // identities and dates from there.
    std::vector<std::string> argv = {"env"};
    for (auto& [k, v] : env) argv.push_back(absl::StrCat(k, "=", v));
    for (auto& a : GitArgv(std::move(args))) argv.push_back(std::move(a));
    return Run(std::move(argv), kRepoDir, kGitTimeout, false, false, stdin_bytes, max_output);
  }();
  if (!run.ok()) return run.status();
  if (!run->ok()) {
    return absl::InternalError(absl::StrCat(what, " failed in the workspace (exit ",
                                            run->result.exit_code(),
                                            "): ", Trimmed(run->result.stderr_tail())));
  }
  return std::move(run->output);
}

absl::StatusOr<Workspace::Clone> Workspace::EnsureClone(const std::string& url) {
  // The token reaches git through a credential helper reading the
  // environment: nothing secret lands on disk or in an argv.
  static constexpr char kScript[] =
      "set -e\n"
      "if [ ! -d repo/.git ]; then\n"
      "  rm -rf repo.partial\n"
      "  git -c core.hooksPath=/dev/null -c credential.helper= "
      "-c 'credential.helper=!f() { echo username=agent; echo \"password=$ORCHESTRATOR_TOKEN\"; }; "
      "f' clone --quiet --no-tags -- \"$1\" repo.partial\n"
      "  mv repo.partial repo\n"
      "  echo cloned\n"
      "else\n"
      "  echo existed\n"
      "fi\n"
      "cd repo\n"
      "git symbolic-ref -q --short HEAD || echo -\n"
      "git rev-parse -q --verify HEAD || echo -\n";
  auto run = Run({"sh", "-c", kScript, "clone", url}, "", kGitTimeout, false, true);
  if (!run.ok()) return run.status();
  if (!run->ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cloning ", url,
                     " into the worker's sandbox failed: ", Trimmed(run->result.stderr_tail())));
  }
  std::vector<std::string> lines =
      absl::StrSplit(Trimmed(run->output), '\n', absl::SkipWhitespace());
  if (lines.size() != 3) {
    return absl::InternalError(absl::StrCat("the clone step said '", Trimmed(run->output), "'"));
  }
  Clone clone;
  clone.cloned_now = Trimmed(lines[0]) == "cloned";
  clone.default_branch = Trimmed(lines[1]);
  clone.head = Trimmed(lines[2]);
  // A detached HEAD (after a re-apply, or the agent's doing) names no
  // branch: only a first clone needs one.
  if (clone.default_branch == "-") clone.default_branch.clear();
  if ((clone.cloned_now && clone.default_branch.empty()) || !IsCommitId(clone.head)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the clone of ", url, " has no branch to work on (is the repository empty?)"));
  }
  return clone;
}

absl::StatusOr<std::string> Workspace::StageTree() {
  if (auto added = Git({"add", "-A"}); !added.ok()) return added.status();
  auto tree = Git({"write-tree"});
  if (!tree.ok()) return tree.status();
  return Trimmed(*tree);
}

absl::StatusOr<std::string> Workspace::TreeOf(const std::string& commit) {
  auto tree = Git({"rev-parse", "--verify", "--end-of-options", absl::StrCat(commit, "^{tree}")});
  if (!tree.ok()) return tree.status();
  return Trimmed(*tree);
}

bool Workspace::HasCommit(const std::string& commit) {
  return IsCommitId(commit) &&
         Git({"cat-file", "-e", "--end-of-options", absl::StrCat(commit, "^{commit}")}).ok();
}

absl::StatusOr<std::string> Workspace::Commit(const CommitInputs& in, const std::string& branch) {
  const std::string date = absl::StrCat("@", absl::ToUnixSeconds(in.time), " +0000");
  auto sha = Git({"commit-tree", in.tree, "-p", in.parent, "-F", "-"}, in.message, 1 << 20,
                 {{"GIT_AUTHOR_NAME", in.author_name},
                  {"GIT_AUTHOR_EMAIL", in.author_email},
                  {"GIT_AUTHOR_DATE", date},
                  {"GIT_COMMITTER_NAME", "orchestrator"},
                  {"GIT_COMMITTER_EMAIL", "orchestrator@orchestrator.invalid"},
                  {"GIT_COMMITTER_DATE", date}});
  if (!sha.ok()) return sha.status();
  const std::string id = Trimmed(*sha);
  if (!IsCommitId(id)) return absl::InternalError(absl::StrCat("git commit-tree said '", id, "'"));
  if (auto ref = Git({"update-ref", absl::StrCat("refs/heads/", branch), id}); !ref.ok()) {
    return ref.status();
  }
  return id;
}

absl::StatusOr<std::string> Workspace::Bundle(const std::string& base, const std::string& branch) {
  return Git({"bundle", "create", "--quiet", "-", absl::StrCat(base, "..refs/heads/", branch)}, "",
             size_t{256} << 20);
}

absl::StatusOr<std::vector<v1::FileChange>> Workspace::Diff(const std::string& from,
                                                            const std::string& to) {
  auto numstat = Git({"diff", "--no-ext-diff", "--numstat", "-z", "-M", from, to});
  if (!numstat.ok()) return numstat.status();
  auto status = Git({"diff", "--no-ext-diff", "--name-status", "-z", "-M", from, to});
  if (!status.ok()) return status.status();
  std::vector<v1::FileChange> files;
  // --name-status -z: STATUS NUL path NUL, or for renames STATUS NUL old NUL new NUL.
  std::vector<std::string> fields = absl::StrSplit(*status, '\0');
  for (size_t i = 0; i + 1 < fields.size();) {
    const std::string code = fields[i];
    if (code.empty()) break;
    v1::FileChange f;
    if (code[0] == 'R' && i + 2 < fields.size()) {
      f.set_change_type(v1::FILE_CHANGE_TYPE_RENAMED);
      f.set_previous_path(ValidText(fields[i + 1]));
      f.set_path(ValidText(fields[i + 2]));
      i += 3;
    } else {
      f.set_change_type(code[0] == 'A'   ? v1::FILE_CHANGE_TYPE_ADDED
                        : code[0] == 'D' ? v1::FILE_CHANGE_TYPE_DELETED
                                         : v1::FILE_CHANGE_TYPE_MODIFIED);
      f.set_path(ValidText(fields[i + 1]));
      i += 2;
    }
    files.push_back(std::move(f));
  }
  // --numstat -z: "ADDED\tDELETED\tpath" NUL, or for renames
  // "ADDED\tDELETED\t" NUL old NUL new NUL. Binary files say "-".
  std::vector<std::string> stats = absl::StrSplit(*numstat, '\0');
  for (size_t i = 0; i < stats.size();) {
    std::vector<std::string> cols = absl::StrSplit(stats[i], absl::MaxSplits('\t', 2));
    if (cols.size() != 3) break;
    std::string path = ValidText(cols[2]);
    size_t next = i + 1;
    if (path.empty() && i + 2 < stats.size()) {
      path = ValidText(stats[i + 2]);
      next = i + 3;
    }
    int added = 0, deleted = 0;
    (void)absl::SimpleAtoi(cols[0], &added);
    (void)absl::SimpleAtoi(cols[1], &deleted);
    for (auto& f : files) {
      if (f.path() == path) {
        f.set_additions(added);
        f.set_deletions(deleted);
      }
    }
    i = next;
  }
  return files;
}

absl::StatusOr<std::string> Workspace::Reapply(const std::string& url, const std::string& branch,
                                               const std::string& commit) {
  static constexpr char kScript[] =
      "set -e\n"
      "g() { git -c core.hooksPath=/dev/null -c core.fsmonitor=false \"$@\"; }\n"
      "g -c credential.helper= "
      "-c 'credential.helper=!f() { echo username=agent; echo \"password=$ORCHESTRATOR_TOKEN\"; }; "
      "f' fetch --quiet --no-tags -- \"$1\" \"refs/heads/$2\"\n"
      "g reset --quiet --hard\n"
      "g clean -fdq\n"
      "g checkout --quiet --detach FETCH_HEAD\n"
      "if ! g -c user.name=orchestrator -c user.email=orchestrator@orchestrator.invalid "
      "cherry-pick --no-commit \"$3\" >&2; then\n"
      "  g cherry-pick --abort >/dev/null 2>&1 || g reset --quiet --hard\n"
      "  exit 3\n"
      "fi\n"
      "g rev-parse HEAD\n";
  auto run = Run({"sh", "-c", kScript, "reapply", url, branch, commit}, kRepoDir, kGitTimeout,
                 false, true);
  if (!run.ok()) return run.status();
  if (run->result.exit_code() == 3) {
    return absl::FailedPreconditionError(
        absl::StrCat("the change conflicts with what was pushed to ", branch, " meanwhile"));
  }
  if (!run->ok()) {
    return absl::UnavailableError(absl::StrCat("re-applying the change on ", branch,
                                               " failed: ", Trimmed(run->result.stderr_tail())));
  }
  const std::string head = Trimmed(run->output);
  if (!IsCommitId(head))
    return absl::InternalError(absl::StrCat("git rev-parse said '", head, "'"));
  return head;
}

}  // namespace orchestrator::engineering
