#pragma once

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "services/common/http/http_client.h"

namespace orchestrator::containers {

// What errors carry of the engine's own words, at most.
inline constexpr size_t kMaxEngineMessageBytes = 1024;

// What the engine says in an error answer: its JSON "message" (Docker's and
// Podman's shape), else the body's text; one printable line of at most
// kMaxEngineMessageBytes, "HTTP <status>" when it says nothing.
std::string EngineMessage(const http::Response& response);

// The status of an error answer (not 2xx) to `what` (e.g. "inspect container
// web-1"), with the engine's message: 400 INVALID_ARGUMENT, 401 and 403
// PERMISSION_DENIED, 404 NOT_FOUND, 409 FAILED_PRECONDITION, 500 INTERNAL
// (the engine failed at it, and would again), 502 to 504 UNAVAILABLE,
// another 4xx FAILED_PRECONDITION, anything else INTERNAL.
absl::Status AnswerStatus(const http::Response& response, absl::string_view what);

// The status of an exchange with the engine at `engine` (its base URL's
// Authority(): "unix:///run/podman.sock", "host:port") that
// failed before an answer (`status` as HttpClient returned it for a
// `method` request): the same code, naming "the container engine at
// <engine>" and `what`.
absl::Status ExchangeStatus(const absl::Status& status, absl::string_view engine,
                            absl::string_view method, absl::string_view what);

}  // namespace orchestrator::containers
