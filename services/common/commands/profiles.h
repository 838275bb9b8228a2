#pragma once

#include <string>
#include <vector>

namespace orchestrator::commands {

// A named set of grants for a kind of agent. Kept apart from the command
// table so that domain code (sessions) can read a role's grants without
// the table's gRPC stubs.
struct Profile {
  std::string name;     // PRODUCT_OWNER, DEVELOPER, DEVOPS
  std::string summary;  // for people
  std::vector<std::string> grants;
};
const std::vector<Profile>& Profiles();
const Profile* FindProfile(const std::string& name);

}  // namespace orchestrator::commands
