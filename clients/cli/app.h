#pragma once

#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace orchestrator::cli {

// Exit statuses, documented in --help and the README.
enum ExitStatus : int {
  kExitOk = 0,
  kExitJobFailed = 1,      // the followed job failed or was cancelled
  kExitUsage = 2,          // bad command line
  kExitUnavailable = 3,    // server unreachable, or the deadline passed
  kExitNotFound = 4,       // NOT_FOUND
  kExitDenied = 5,         // UNAUTHENTICATED, PERMISSION_DENIED
  kExitRejected = 6,       // INVALID_ARGUMENT, FAILED_PRECONDITION, ALREADY_EXISTS, …
  kExitUnimplemented = 7,  // the server does not implement the RPC (yet)
  kExitServerError = 8,    // anything else
};

// What the CLI reads from outside its arguments; tests supply their own.
struct Environment {
  std::map<std::string, std::string> vars;  // ORCHESTRATOR_ADDR, ORCHESTRATOR_TOKEN
  std::function<std::string()> read_stdin;  // secrets given on standard input
};

// The whole CLI: `args` without the program name. Output on `out`, errors
// and hints on `err`; returns the exit status.
int Run(const std::vector<std::string>& args, const Environment& env, std::ostream& out,
        std::ostream& err);

}  // namespace orchestrator::cli
