#pragma once

#include <string>

namespace orchestrator::infra {

// provision.yml (next to this header), embedded in the binary at build
// time (orchestrator::infra_playbook): a deployed binary provisions with
// the playbook it was built with, wherever it is installed.
const std::string& ProvisionPlaybook();

}  // namespace orchestrator::infra
