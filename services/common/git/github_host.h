#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/git/git_host.h"
#include "services/common/http/http_client.h"

namespace orchestrator::git {

struct GitHubConfig {
  // The REST API's root (GitHub Enterprise Server: https://HOST/api/v3).
  std::string api_url = "https://api.github.com";
  // The organisation repositories are made in; "" for the token's own
  // user account.
  std::string owner;
  // A personal access token or an installation token: for the REST API
  // (Bearer) and for git over HTTPS (Basic, as x-access-token).
  std::string token;
  // For each REST call.
  absl::Duration timeout = absl::Seconds(30);
  // For each git command (a push, reading a head).
  absl::Duration git_timeout = absl::Minutes(2);
};

// Repositories on GitHub (or a GitHub Enterprise Server), through its REST
// API (2022-11-28): created private and empty, pushed to over HTTPS with
// the same token. Errors carry GitHub's own message and never the token:
// UNAUTHENTICATED for a token GitHub refuses, PERMISSION_DENIED when it may
// not see or create there, UNAVAILABLE for 5xx, rate limits and
// connection failures (retry).
class GitHubHost final : public GitHost {
 public:
  // INVALID_ARGUMENT for a malformed api_url or owner, or no token.
  static absl::StatusOr<std::unique_ptr<GitHubHost>> FromConfig(GitHubConfig config);

  std::string Kind() const override { return "github"; }
  absl::StatusOr<std::optional<Repository>> Find(const std::string& name) override;
  absl::StatusOr<Repository> Create(const NewRepository& repository) override;
  absl::StatusOr<GitCredentials> PushCredentials(const Repository& repository) override;
  // Over HTTPS with the token, by the git command line.
  absl::Status Push(const Repository& repository, const std::string& dir,
                    const std::string& branch) override;
  absl::StatusOr<std::string> Head(const Repository& repository,
                                   const std::string& branch) override;

  // Opens a pull request in `full_name` ("owner/repo") from its branch
  // `head` into its branch `base` (POST /repos/{owner}/{repo}/pulls); the
  // pull request's html_url. When one from `head` into `base` is open
  // already (a retry), that one's, and no second is opened.
  // FAILED_PRECONDITION with GitHub's words when it refuses (no such
  // branch, no commits between them); NOT_FOUND for a repository the token
  // cannot see; INVALID_ARGUMENT naming the field for a malformed one.
  absl::StatusOr<std::string> OpenPullRequest(const std::string& full_name, const std::string& head,
                                              const std::string& base, const std::string& title,
                                              const std::string& body);

 private:
  GitHubHost(GitHubConfig config, http::BaseUrl api);

  // GitHub's answer to one REST call with the token (`json_body` "" for
  // none); UNAVAILABLE when there is none.
  absl::StatusOr<http::Response> Call(const std::string& method, const std::string& path,
                                      const std::string& json_body);
  // The account repositories live under: the organisation, or the token's
  // user (GET /user, once).
  absl::StatusOr<std::string> Owner();

  const GitHubConfig config_;
  const http::HttpClient client_;
  absl::Mutex mu_;  // guards the login learnt from GET /user
  std::string login_ ABSL_GUARDED_BY(mu_);
};

}  // namespace orchestrator::git
