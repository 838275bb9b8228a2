#include "services/common/git/local_repository.h"

#include <git2.h>

#include <filesystem>
#include <memory>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace orchestrator::git {
namespace {

namespace fs = std::filesystem;

// libgit2 started once for the process (never shut down: a thread still
// finishing a push at exit must not find it gone), reading no
// configuration of the host's.
void EnsureLibgit2() {
  static const bool started = [] {
    git_libgit2_init();
    for (int level : {GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_XDG, GIT_CONFIG_LEVEL_GLOBAL,
                      GIT_CONFIG_LEVEL_PROGRAMDATA}) {
      git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, level, "");
    }
    return true;
  }();
  (void)started;
}

template <typename T, void (*Free)(T*)>
struct Freer {
  void operator()(T* p) const { Free(p); }
};
using RepositoryPtr = std::unique_ptr<git_repository, Freer<git_repository, git_repository_free>>;
using IndexPtr = std::unique_ptr<git_index, Freer<git_index, git_index_free>>;
using TreePtr = std::unique_ptr<git_tree, Freer<git_tree, git_tree_free>>;
using CommitPtr = std::unique_ptr<git_commit, Freer<git_commit, git_commit_free>>;
using SignaturePtr = std::unique_ptr<git_signature, Freer<git_signature, git_signature_free>>;
using RemotePtr = std::unique_ptr<git_remote, Freer<git_remote, git_remote_free>>;

// The status of libgit2's `code` for `what`, with its message.
absl::Status Failed(int code, absl::string_view what) {
  const git_error* error = git_error_last();
  const std::string message = absl::StrCat(what, ": ",
                                           error != nullptr && error->message != nullptr
                                               ? error->message
                                               : absl::StrCat("libgit2 error ", code));
  switch (code) {
    case GIT_ENOTFOUND:
      return absl::NotFoundError(message);
    case GIT_EEXISTS:
      return absl::AlreadyExistsError(message);
    case GIT_ENONFASTFORWARD:
    case GIT_EMODIFIED:
    case GIT_ELOCKED:
      return absl::FailedPreconditionError(message);
    case GIT_EINVALIDSPEC:
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status CheckBranch(const std::string& branch) {
  int valid = 0;
  if (branch.empty() || branch.front() == '-' ||
      git_reference_name_is_valid(&valid, absl::StrCat("refs/heads/", branch).c_str()) != 0 ||
      !valid) {
    return absl::InvalidArgumentError("branch: must be a branch name");
  }
  return absl::OkStatus();
}

absl::Status CheckSignatureField(absl::string_view field, const std::string& value) {
  if (value.empty() || value.find_first_of("<>\n\r") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be non-empty, without '<', '>' or line breaks"));
  }
  return absl::OkStatus();
}

// The repository at `dir` itself: never one around it.
absl::StatusOr<RepositoryPtr> Open(const std::string& dir) {
  git_repository* repository = nullptr;
  if (int rc =
          git_repository_open_ext(&repository, dir.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr);
      rc != 0) {
    return Failed(rc, absl::StrCat("open repository ", dir));
  }
  return RepositoryPtr(repository);
}

absl::StatusOr<RepositoryPtr> Init(const std::string& dir, const std::string& branch, bool bare) {
  git_repository_init_options options;
  git_repository_init_options_init(&options, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
  options.flags = GIT_REPOSITORY_INIT_MKPATH | (bare ? GIT_REPOSITORY_INIT_BARE : 0);
  const std::string head = absl::StrCat("refs/heads/", branch);
  options.initial_head = head.c_str();
  git_repository* repository = nullptr;
  if (int rc = git_repository_init_ext(&repository, dir.c_str(), &options); rc != 0) {
    return Failed(rc, absl::StrCat("git init ", dir));
  }
  return RepositoryPtr(repository);
}

}  // namespace

absl::StatusOr<std::string> CommitAll(const std::string& dir, const std::string& branch,
                                      const std::string& message, const Signature& author) {
  EnsureLibgit2();
  if (dir.empty()) return absl::InvalidArgumentError("dir: must be set");
  if (auto s = CheckBranch(branch); !s.ok()) return s;
  if (auto s = CheckSignatureField("author.name", author.name); !s.ok()) return s;
  if (auto s = CheckSignatureField("author.email", author.email); !s.ok()) return s;
  const std::string what = absl::StrCat("commit in ", dir);

  auto repository = Init(dir, branch, /*bare=*/false);
  if (!repository.ok()) return repository.status();
  git_repository* repo = repository->get();

  git_index* index_raw = nullptr;
  if (int rc = git_repository_index(&index_raw, repo); rc != 0) return Failed(rc, what);
  IndexPtr index(index_raw);
  git_strarray everything = {nullptr, 0};
  if (int rc = git_index_add_all(index.get(), &everything, GIT_INDEX_ADD_DEFAULT, nullptr, nullptr);
      rc != 0) {
    return Failed(rc, what);
  }
  if (int rc = git_index_write(index.get()); rc != 0) return Failed(rc, what);
  git_oid tree_id;
  if (int rc = git_index_write_tree(&tree_id, index.get()); rc != 0) return Failed(rc, what);
  git_tree* tree_raw = nullptr;
  if (int rc = git_tree_lookup(&tree_raw, repo, &tree_id); rc != 0) return Failed(rc, what);
  TreePtr tree(tree_raw);

  // The branch's commit, when the repository already had one, is the parent.
  const std::string ref = absl::StrCat("refs/heads/", branch);
  CommitPtr parent;
  git_oid parent_id;
  if (int rc = git_reference_name_to_id(&parent_id, repo, ref.c_str()); rc == 0) {
    git_commit* parent_raw = nullptr;
    if (int lookup = git_commit_lookup(&parent_raw, repo, &parent_id); lookup != 0) {
      return Failed(lookup, what);
    }
    parent.reset(parent_raw);
  } else if (rc != GIT_ENOTFOUND) {
    return Failed(rc, what);
  }

  git_signature* signature_raw = nullptr;
  if (int rc = git_signature_new(&signature_raw, author.name.c_str(), author.email.c_str(),
                                 absl::ToUnixSeconds(author.when), 0);
      rc != 0) {
    return Failed(rc, what);
  }
  SignaturePtr signature(signature_raw);
  git_buf cleaned = {nullptr, 0, 0};
  if (int rc = git_message_prettify(&cleaned, message.c_str(), /*strip_comments=*/0, '#');
      rc != 0) {
    return Failed(rc, what);
  }
  const std::string cleaned_message(cleaned.ptr, cleaned.size);
  git_buf_dispose(&cleaned);

  const git_commit* parents[] = {parent.get()};
  git_oid commit_id;
  if (int rc =
          git_commit_create(&commit_id, repo, ref.c_str(), signature.get(), signature.get(),
                            nullptr, cleaned_message.c_str(), tree.get(), parent ? 1 : 0, parents);
      rc != 0) {
    return Failed(rc, what);
  }
  char hex[GIT_OID_HEXSZ + 1];
  git_oid_tostr(hex, sizeof(hex), &commit_id);
  return std::string(hex);
}

absl::Status InitBare(const std::string& dir, const std::string& branch) {
  EnsureLibgit2();
  if (dir.empty()) return absl::InvalidArgumentError("dir: must be set");
  if (auto s = CheckBranch(branch); !s.ok()) return s;
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_empty(dir, ec)) {
    return absl::AlreadyExistsError(absl::StrCat("git init --bare ", dir, ": it is not empty"));
  }
  return Init(dir, branch, /*bare=*/true).status();
}

absl::Status PushToBare(const std::string& dir, const std::string& bare_dir,
                        const std::string& branch) {
  EnsureLibgit2();
  if (auto s = CheckBranch(branch); !s.ok()) return s;
  const std::string what = absl::StrCat("push ", branch, " to ", bare_dir);
  auto source = Open(dir);
  if (!source.ok()) return source.status();
  // The destination must be a bare repository of its own (the local
  // transport would otherwise look for one around the path).
  if (auto destination = Open(bare_dir); !destination.ok()) {
    return destination.status();
  } else if (!git_repository_is_bare(destination->get())) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": not a bare repository"));
  }

  git_remote* remote_raw = nullptr;
  const std::string url = fs::absolute(bare_dir).lexically_normal().string();
  if (int rc = git_remote_create_anonymous(&remote_raw, source->get(), url.c_str()); rc != 0) {
    return Failed(rc, what);
  }
  RemotePtr remote(remote_raw);

  // A ref the destination refused is reported here, not as an error code.
  std::string refused;
  git_push_options options;
  git_push_options_init(&options, GIT_PUSH_OPTIONS_VERSION);
  options.callbacks.payload = &refused;
  options.callbacks.push_update_reference = [](const char* ref, const char* status,
                                               void* payload) -> int {
    if (status != nullptr) {
      *static_cast<std::string*>(payload) = absl::StrCat(ref, ": ", status);
    }
    return 0;
  };
  std::string refspec = absl::StrCat("refs/heads/", branch, ":refs/heads/", branch);
  char* specs[] = {refspec.data()};
  git_strarray refspecs = {specs, 1};
  if (int rc = git_remote_push(remote.get(), &refspecs, &options); rc != 0) {
    return Failed(rc, what);
  }
  if (!refused.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": refused: ", refused));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> BranchHead(const std::string& dir, const std::string& branch) {
  EnsureLibgit2();
  if (auto s = CheckBranch(branch); !s.ok()) return s;
  auto repository = Open(dir);
  if (!repository.ok()) return repository.status();
  git_oid id;
  const std::string ref = absl::StrCat("refs/heads/", branch);
  if (int rc = git_reference_name_to_id(&id, repository->get(), ref.c_str()); rc != 0) {
    return Failed(rc, absl::StrCat("branch ", branch, " of ", dir));
  }
  char hex[GIT_OID_HEXSZ + 1];
  git_oid_tostr(hex, sizeof(hex), &id);
  return std::string(hex);
}

}  // namespace orchestrator::git
