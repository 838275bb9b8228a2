#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/containers/container_engine.h"

namespace orchestrator::containers {

// Where to start reading a container's log to get (at least) its last
// `lines` lines written at or after `since`, in order. The engine's own
// tail cannot be trusted for that: Podman 4.3 asked for tail=N reorders
// and glues the lines a program wrote in pieces (Python's tracebacks), and
// its timestamps are whole seconds. So a first read asks for a little more
// than N to learn the second they start in; reading from that second gives
// them in order (and some lines before, which the reader drops).
absl::StatusOr<absl::Time> TailStart(ContainerEngine& engine, const std::string& container,
                                     int lines, absl::Time since, const std::atomic<bool>* cancel);

// The last `lines` lines a container wrote (each cut at `max_line_bytes`),
// in order, read from TailStart.
absl::StatusOr<std::vector<std::string>> LastLogLines(ContainerEngine& engine,
                                                      const std::string& container, int lines,
                                                      size_t max_line_bytes);

// The whole second `t` is in.
inline absl::Time SecondOf(absl::Time t) { return absl::FromUnixSeconds(absl::ToUnixSeconds(t)); }

}  // namespace orchestrator::containers
