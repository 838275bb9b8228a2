#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/common/auth/principal.h"

namespace orchestrator {

// How a component proves it is part of the mesh: every process of one
// install holds the same secret (a file, e.g. a mounted Kubernetes Secret),
// sends it as its bearer token on calls between components, and recognises
// it on calls it receives. It opens the mesh-only RPCs (minting a worker's
// token, revealing a granted secret) and lets the caller act for a user it
// names in `x-orchestrator-act-for` (a job running for its owner, a session
// driving its user's worker). No user or agent token can do either.
class MeshCredential final {
 public:
  // At least this long: a guess of it must be hopeless.
  static constexpr size_t kMinLength = 32;

  // The first line of `path`; FAILED_PRECONDITION naming the file when it
  // cannot be read or holds too short a secret.
  static absl::StatusOr<MeshCredential> FromFile(const std::string& path);
  // A fresh random credential, for a process hosting the whole mesh.
  static MeshCredential Random();
  // A fresh random secret in the form a credential file holds.
  static std::string NewSecret();

  // Whether `token` (the bearer token of a call) is this credential; in
  // constant time.
  bool Matches(absl::string_view token) const;
  const std::string& value() const { return value_; }

 private:
  explicit MeshCredential(std::string value);
  std::string value_;
  std::string hash_;
};

using MeshCredentialPtr = std::shared_ptr<const MeshCredential>;

// The metadata naming the user the mesh acts for.
inline constexpr absl::string_view kActForHeader = "x-orchestrator-act-for";

// The principal of a call carrying the mesh credential: the mesh itself
// (sees everything), or, acting for `act_for`, that user's owner scope with
// the mesh's grants.
Principal MeshPrincipal(absl::string_view act_for = "");

// True for a principal made by MeshPrincipal, acting for a user or not.
inline bool IsMesh(const Principal& p) { return p.kind == PrincipalKind::kMesh; }

}  // namespace orchestrator
