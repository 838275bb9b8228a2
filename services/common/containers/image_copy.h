#pragma once

#include <atomic>
#include <string>

#include "absl/status/status.h"
#include "services/common/containers/container_engine.h"

namespace orchestrator::containers {

// Makes `image` (a reference, e.g. a template's base image) on `to` the same
// image it is on `from`, for engines that share no storage (a server's
// Podman reached through an SSH tunnel): nothing when `to` has it already
// (the same image id), else `from` saves it to a temporary file (0600) in
// `scratch_dir` ("" for the system's temporary directory) that `to` loads,
// the file removed afterwards, also on an error. The archive passes through
// that file, never memory, so the disk needs room for it. Errors name the
// image and the engine (source or destination): NOT_FOUND when `from` has
// no such image, INTERNAL when `to` has it under another id after loading,
// the engines' errors otherwise. CANCELLED once `cancel` (may be null) turns
// true.
absl::Status CopyImage(ContainerEngine& from, ContainerEngine& to, const std::string& image,
                       const std::string& scratch_dir, const std::atomic<bool>* cancel = nullptr);

}  // namespace orchestrator::containers
