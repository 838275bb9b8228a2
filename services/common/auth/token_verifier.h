#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "services/common/auth/principal.h"

namespace orchestrator {

// Turns a bearer token into the principal it acts for. UNAUTHENTICATED for
// unknown, expired, revoked or disabled-user tokens; UNAVAILABLE when the
// source of truth cannot be reached.
class TokenVerifier {
 public:
  virtual ~TokenVerifier() = default;
  virtual absl::StatusOr<Principal> Verify(absl::string_view token) = 0;
};

using TokenVerifierPtr = std::shared_ptr<TokenVerifier>;

// Remembers verified tokens for a short time so the interceptor does not
// reach the store on every call. Revocation made in this process takes
// effect at once (Forget); elsewhere within `ttl`. Expiry always at once:
// a remembered token past its expire_time is asked for again.
class CachingTokenVerifier final : public TokenVerifier {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  using WallClock = std::function<absl::Time()>;
  CachingTokenVerifier(TokenVerifierPtr inner, std::chrono::milliseconds ttl,
                       Clock clock = &std::chrono::steady_clock::now,
                       WallClock wall_clock = &absl::Now);

  absl::StatusOr<Principal> Verify(absl::string_view token) override;
  void ForgetAll();

 private:
  struct Entry {
    Principal principal;
    std::chrono::steady_clock::time_point expires;
  };
  TokenVerifierPtr inner_;
  const std::chrono::milliseconds ttl_;
  Clock clock_;
  WallClock wall_clock_;
  absl::Mutex mu_;
  // Keyed by the token's hash, never the token itself.
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace orchestrator
