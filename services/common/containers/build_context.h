#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace orchestrator::containers {

// The build context under `dir` as a tar archive (POSIX pax), in memory,
// as POST /build takes it: directories, regular files and symbolic links
// (stored as links, never followed), in name order, owned by root. Any
// `.git` (a repository's, or a submodule's file) is left out, and so are
// sockets, FIFOs and devices, which a build cannot copy.
// FAILED_PRECONDITION when `dir` is not a directory or a file in it cannot
// be read (naming it); RESOURCE_EXHAUSTED once the archive would pass
// `max_bytes`.
absl::StatusOr<std::string> TarBuildContext(const std::string& dir, size_t max_bytes);

}  // namespace orchestrator::containers
