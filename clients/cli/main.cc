// orchestrator: the command line of the codegen orchestrator.
#include <unistd.h>

#include <iostream>
#include <iterator>

#include "clients/cli/app.h"

extern char** environ;

int main(int argc, char** argv) {
  orchestrator::cli::Environment env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    const size_t eq = kv.find('=');
    if (eq != std::string::npos) env.vars[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  env.read_stdin = [] {
    if (isatty(STDIN_FILENO))
      std::cerr << "(reading the value from standard input; end with Ctrl-D)\n";
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  };
  return orchestrator::cli::Run(std::vector<std::string>(argv + 1, argv + argc), env, std::cout,
                                std::cerr);
}
