#include "services/common/auth/token_verifier.h"

#include "services/common/crypto/secret_box.h"

namespace orchestrator {

CachingTokenVerifier::CachingTokenVerifier(TokenVerifierPtr inner, std::chrono::milliseconds ttl,
                                           Clock clock, WallClock wall_clock)
    : inner_(std::move(inner)),
      ttl_(ttl),
      clock_(std::move(clock)),
      wall_clock_(std::move(wall_clock)) {}

absl::StatusOr<Principal> CachingTokenVerifier::Verify(absl::string_view token) {
  const std::string key = HashToken(token);
  const auto now = clock_();
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      if (it->second.expires > now && it->second.principal.expire_time > wall_clock_()) {
        return it->second.principal;
      }
      entries_.erase(it);
    }
  }
  auto principal = inner_->Verify(token);
  if (principal.ok()) {
    absl::MutexLock lock(&mu_);
    if (entries_.size() > 10000) entries_.clear();  // bound memory under token churn
    entries_[key] = Entry{*principal, now + ttl_};
  }
  return principal;
}

void CachingTokenVerifier::ForgetAll() {
  absl::MutexLock lock(&mu_);
  entries_.clear();
}

}  // namespace orchestrator
