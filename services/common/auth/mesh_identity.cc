#include "services/common/auth/mesh_identity.h"

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "services/common/crypto/secret_box.h"

namespace orchestrator {

MeshCredential::MeshCredential(std::string value)
    : value_(std::move(value)), hash_(HashToken(value_)) {}

absl::StatusOr<MeshCredential> MeshCredential::FromFile(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) {
    return absl::FailedPreconditionError(
        absl::StrCat("--mesh_credential_file: cannot read '", path, "'"));
  }
  line = std::string(absl::StripAsciiWhitespace(line));
  if (line.size() < kMinLength) {
    return absl::FailedPreconditionError(
        absl::StrCat("--mesh_credential_file: '", path, "' must hold a secret of at least ",
                     kMinLength, " characters on its first line (e.g. `openssl rand -hex 32`)"));
  }
  for (unsigned char c : line) {
    if (c < 0x21 || c > 0x7e) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--mesh_credential_file: '", path, "' must hold printable ASCII without spaces"));
    }
  }
  return MeshCredential(std::move(line));
}

std::string MeshCredential::NewSecret() { return absl::StrCat("mesh_", RandomUrlSafe(32)); }

MeshCredential MeshCredential::Random() { return MeshCredential(NewSecret()); }

bool MeshCredential::Matches(absl::string_view token) const {
  // Hashes of equal length compared without an early exit: the time taken
  // tells nothing about how much of a guess was right.
  const std::string given = HashToken(token);
  if (given.size() != hash_.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < given.size(); ++i) diff |= given[i] ^ hash_[i];
  return diff == 0;
}

Principal MeshPrincipal(absl::string_view act_for) {
  Principal p;
  p.kind = PrincipalKind::kMesh;
  p.token_id = "";
  p.role_grants = {"*"};
  if (act_for.empty()) {
    p.user_id = "mesh";
    p.user_name = "mesh";
    p.admin = true;
  } else {
    p.user_id = std::string(act_for);
    p.user_name = absl::StrCat("mesh for ", act_for);
    p.admin = false;
  }
  return p;
}

}  // namespace orchestrator
