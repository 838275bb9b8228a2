#include "services/common/git/mesh_git_credentials.h"

#include <arpa/inet.h>

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace orchestrator::git {
namespace {

// "localhost", 127.0.0.0/8 or ::1.
bool IsLoopback(const std::string& host) {
  if (host == "localhost") return true;
  unsigned char b[16];
  if (inet_pton(AF_INET, host.c_str(), b) == 1) return b[0] == 127;
  static constexpr unsigned char kLoopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return inet_pton(AF_INET6, host.c_str(), b) == 1 && std::equal(b, b + 16, kLoopback6);
}

}  // namespace

bool IsGitHubRepositoryUrl(const http::BaseUrl& api, absl::string_view url) {
  auto parsed = http::BaseUrl::Parse(url);
  return parsed.ok() && parsed->unix_socket.empty() && parsed->tls == api.tls &&
         parsed->port == api.port &&
         (parsed->host == api.host || "api." + parsed->host == api.host);
}

GitCredentials GitHubTokenCredentials(absl::string_view token) {
  return {.http_header = absl::StrCat("Authorization: Basic ",
                                      absl::Base64Escape(absl::StrCat("x-access-token:", token)))};
}

absl::StatusOr<GitCredentials> MeshCredentialsFor(const MeshGitAccess& access,
                                                  absl::string_view url) {
  auto parsed = http::BaseUrl::Parse(url);
  if (parsed.ok() && parsed->unix_socket.empty() && IsLoopback(parsed->host) &&
      !access.mesh_token.empty()) {
    return GitCredentials{.http_header = absl::StrCat("Authorization: Bearer ", access.mesh_token)};
  }
  if (!access.github_api_url.empty() && !access.github_token.empty()) {
    auto api = http::BaseUrl::Parse(access.github_api_url);
    if (api.ok() && IsGitHubRepositoryUrl(*api, url)) {
      return GitHubTokenCredentials(access.github_token);
    }
  }
  // Never the URL itself: it may carry a user's password.
  return absl::FailedPreconditionError(parsed.ok()
                                           ? absl::StrCat("the repository at ", parsed->Authority(),
                                                          " is not on the mesh's git host")
                                           : "the repository is not on the mesh's git host");
}

}  // namespace orchestrator::git
