#pragma once

#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "services/infra/domain/server_shell.h"

namespace orchestrator::infra {

// Reads ansible-playbook's standard output under the ansible.posix.jsonl
// callback (one JSON event a line, as the run goes) into a PlaybookReport:
// the tasks started (told to `task_started` at once), the first failure
// and the per-host counts of the final stats. Lines that are not events
// are ignored.
class AnsibleEventReader {
 public:
  explicit AnsibleEventReader(std::function<void(const std::string& task)> task_started)
      : task_started_(std::move(task_started)) {}

  void Line(absl::string_view line);
  PlaybookReport& report() { return report_; }

 private:
  std::function<void(const std::string& task)> task_started_;
  PlaybookReport report_;
};

}  // namespace orchestrator::infra
