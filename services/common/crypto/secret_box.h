#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace orchestrator {

// Authenticated encryption for values at rest (libsodium's XChaCha20-
// Poly1305). The associated data binds a ciphertext to where it belongs
// (e.g. project id + secret name), so a ciphertext moved to another row
// fails to open just like a tampered one.
class SecretBox final {
 public:
  static constexpr size_t kKeySize = 32;

  // `key_base64` holds exactly 32 bytes, base64-encoded (standard or URL-safe).
  static absl::StatusOr<SecretBox> FromBase64Key(absl::string_view key_base64);

  // Returns nonce || ciphertext.
  std::string Seal(absl::string_view plaintext, absl::string_view associated_data) const;
  // DATA_LOSS when the data was altered, bound to other associated data, or
  // sealed under another key.
  absl::StatusOr<std::string> Open(absl::string_view sealed,
                                   absl::string_view associated_data) const;

 private:
  explicit SecretBox(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

// The SecretBox whose key `path` holds (base64); FAILED_PRECONDITION
// naming `flag` when the file cannot be read, INVALID_ARGUMENT when it
// holds no key.
absl::StatusOr<SecretBox> SecretBoxFromKeyFile(absl::string_view flag, const std::string& path);

// A new random key, base64-encoded.
std::string GenerateSecretKeyBase64();

// `bytes` random bytes encoded URL-safe without padding (for tokens and ids).
std::string RandomUrlSafe(size_t bytes);

// A new resource id: `prefix` + 20 random lowercase hex digits.
std::string NewId(absl::string_view prefix);

// One-way hash of a token for storage and lookup (BLAKE2b-256, hex).
std::string HashToken(absl::string_view token);

}  // namespace orchestrator
