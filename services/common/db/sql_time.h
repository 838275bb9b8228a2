#pragma once

#include <string>

#include "absl/time/time.h"

// A statement's bigint parameter $n of Unix microseconds as a timestamptz,
// exact to the microsecond (times come from the caller's clock).
#define ORCHESTRATOR_SQL_TIME(n) \
  "('epoch'::timestamptz + $" #n "::bigint * interval '1 microsecond')"

namespace orchestrator::db {

// The parameter ORCHESTRATOR_SQL_TIME reads.
inline std::string Micros(absl::Time t) { return std::to_string(absl::ToUnixMicros(t)); }

}  // namespace orchestrator::db
