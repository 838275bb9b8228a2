#include "services/common/crypto/secret_box.h"

#include <sodium.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace orchestrator {
namespace {

void EnsureSodium() {
  static const bool ready = [] {
    if (sodium_init() < 0) std::abort();  // no usable randomness: nothing is safe to do
    return true;
  }();
  (void)ready;
}

const unsigned char* Bytes(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

absl::StatusOr<SecretBox> SecretBox::FromBase64Key(absl::string_view key_base64) {
  EnsureSodium();
  std::string key;
  absl::string_view trimmed = key_base64;
  while (!trimmed.empty() &&
         (trimmed.back() == '\n' || trimmed.back() == '\r' || trimmed.back() == ' ')) {
    trimmed.remove_suffix(1);
  }
  if (!absl::Base64Unescape(trimmed, &key) && !absl::WebSafeBase64Unescape(trimmed, &key)) {
    return absl::InvalidArgumentError("secrets key is not valid base64");
  }
  if (key.size() != kKeySize) {
    return absl::InvalidArgumentError("secrets key must decode to exactly 32 bytes");
  }
  return SecretBox(std::move(key));
}

std::string SecretBox::Seal(absl::string_view plaintext, absl::string_view associated_data) const {
  constexpr size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  std::string out(kNonce + plaintext.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES, '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(out.data());
  randombytes_buf(nonce, kNonce);
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(nonce + kNonce, &written, Bytes(plaintext),
                                             plaintext.size(), Bytes(associated_data),
                                             associated_data.size(), nullptr, nonce, Bytes(key_));
  out.resize(kNonce + written);
  return out;
}

absl::StatusOr<std::string> SecretBox::Open(absl::string_view sealed,
                                            absl::string_view associated_data) const {
  constexpr size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  if (sealed.size() < kNonce + crypto_aead_xchacha20poly1305_ietf_ABYTES) {
    return absl::DataLossError("encrypted value is truncated");
  }
  std::string out(sealed.size() - kNonce - crypto_aead_xchacha20poly1305_ietf_ABYTES, '\0');
  unsigned long long written = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(out.data()), &written, nullptr, Bytes(sealed) + kNonce,
          sealed.size() - kNonce, Bytes(associated_data), associated_data.size(), Bytes(sealed),
          Bytes(key_)) != 0) {
    return absl::DataLossError(
        "encrypted value failed authentication: altered, misplaced or sealed under another key");
  }
  out.resize(written);
  return out;
}

absl::StatusOr<SecretBox> SecretBoxFromKeyFile(absl::string_view flag, const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::FailedPreconditionError(absl::StrCat(flag, ": cannot read '", path, "'"));
  std::stringstream key;
  key << in.rdbuf();
  auto box = SecretBox::FromBase64Key(key.str());
  if (!box.ok())
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", box.status().message()));
  return box;
}

std::string GenerateSecretKeyBase64() {
  EnsureSodium();
  std::string key(SecretBox::kKeySize, '\0');
  randombytes_buf(key.data(), key.size());
  return absl::Base64Escape(key);
}

std::string RandomUrlSafe(size_t bytes) {
  EnsureSodium();
  std::string raw(bytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  std::string out = absl::WebSafeBase64Escape(raw);
  return out;
}

std::string NewId(absl::string_view prefix) {
  EnsureSodium();
  std::string raw(10, '\0');
  randombytes_buf(raw.data(), raw.size());
  return std::string(prefix) + absl::BytesToHexString(raw);
}

std::string HashToken(absl::string_view token) {
  EnsureSodium();
  unsigned char digest[crypto_generichash_BYTES];
  crypto_generichash(digest, sizeof digest, Bytes(token), token.size(), nullptr, 0);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

}  // namespace orchestrator
