#pragma once

#include <ostream>
#include <string>

#include "absl/time/time.h"
#include "services/common/commands/command.h"

namespace orchestrator::cli {

// A response in the protobuf JSON mapping, on one line.
std::string Json(const google::protobuf::Message& message);

// A unary command's response for people: a table of its list (other fields
// above it as "key: value" lines, the next page's token on `err`), or the
// fields of what it shows. `now` makes times relative ("4m ago").
void PrintResponse(const commands::Command& command, const google::protobuf::Message& response,
                   absl::Time now, std::ostream& out, std::ostream& err);

}  // namespace orchestrator::cli
