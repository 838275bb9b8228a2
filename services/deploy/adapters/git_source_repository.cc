#include "services/deploy/adapters/git_source_repository.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace orchestrator::deploy {

git::GitCredentials GitSourceRepository::CredentialsFor(const std::string& url) const {
  for (const char* loopback : {"http://127.0.0.1:", "http://localhost:", "http://[::1]:"}) {
    if (absl::StartsWith(url, loopback)) {
      return {absl::StrCat("Authorization: Bearer ", mesh_->value())};
    }
  }
  return {};
}

absl::StatusOr<std::string> GitSourceRepository::Head(const std::string& url) {
  return cli_.RemoteHead(url, "HEAD", CredentialsFor(url));
}

absl::Status GitSourceRepository::Checkout(const std::string& url, const std::string& commit,
                                           const std::string& dir) {
  return cli_.CheckoutCommit(url, commit, dir, CredentialsFor(url));
}

}  // namespace orchestrator::deploy
