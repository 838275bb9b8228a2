#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/common/git/git_host.h"
#include "services/common/http/http_client.h"

namespace orchestrator::git {

// What the mesh authenticates to git hosts with, when it fetches or pushes
// a project's repository itself (deploy, engineering).
struct MeshGitAccess {
  // The mesh credential: for the local git host's repositories (http(s)
  // URLs on loopback, which only the mesh, or an operator allowing local
  // hosts, records on a project).
  std::string mesh_token;
  // --git_host=github: the REST API's root (--github_api_url) and the token;
  // both "" when the mesh has no GitHub.
  std::string github_api_url;
  std::string github_token;
};

// The credentials for `url`: the mesh's bearer for the local git host, the
// GitHub token for the configured GitHub's repositories; FAILED_PRECONDITION
// "... is not on the mesh's git host" for any other URL, so no credential of
// the mesh ever goes to a host a user named.
absl::StatusOr<GitCredentials> MeshCredentialsFor(const MeshGitAccess& access,
                                                  absl::string_view url);

// Whether `url` is a repository URL of the GitHub whose REST API is at
// `api`: on the API's own host, or on the host the API is the "api." of
// (api.github.com serves github.com), with the same scheme and port.
bool IsGitHubRepositoryUrl(const http::BaseUrl& api, absl::string_view url);

// How GitHub takes a token for git over HTTPS: Basic, as x-access-token.
GitCredentials GitHubTokenCredentials(absl::string_view token);

}  // namespace orchestrator::git
