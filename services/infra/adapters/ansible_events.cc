#include "services/infra/adapters/ansible_events.h"

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace orchestrator::infra {
namespace {

using nlohmann::json;

// The tasks a report lists at most, and how much of a module's error
// output a failure keeps.
constexpr size_t kMaxTasks = 200;
constexpr size_t kMaxDetailBytes = 600;

std::string StringAt(const json& object, const char* key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

int IntAt(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<int>() : 0;
}

std::string Tail(const std::string& text) {
  std::string trimmed(absl::StripAsciiWhitespace(text));
  if (trimmed.size() <= kMaxDetailBytes) return trimmed;
  return absl::StrCat("…", trimmed.substr(trimmed.size() - kMaxDetailBytes));
}

// Why a host's result failed, for people: the module's message, and what
// it wrote to standard error when that says more (a module that could not
// even start, e.g. "sudo: not found").
std::string FailureOf(const json& result) {
  std::string message = StringAt(result, "msg");
  for (const char* key : {"module_stderr", "stderr"}) {
    const std::string detail = Tail(StringAt(result, key));
    if (!detail.empty() && message.find(detail) == std::string::npos) {
      message = message.empty() ? detail : absl::StrCat(message, ": ", detail);
      break;
    }
  }
  if (message.empty()) message = Tail(StringAt(result, "module_stdout"));
  return message.empty() ? "failed (Ansible gave no reason)" : message;
}

}  // namespace

void AnsibleEventReader::Line(absl::string_view line) {
  line = absl::StripAsciiWhitespace(line);
  if (line.empty() || line.front() != '{') return;
  const json event = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!event.is_object()) return;
  const std::string kind = StringAt(event, "_event");
  const json task = event.value("task", json::object());
  const std::string task_name = StringAt(task, "name");
  if (kind == "v2_playbook_on_task_start" || kind == "v2_runner_on_start" ||
      kind == "v2_playbook_on_handler_task_start") {
    if (report_.tasks.size() < kMaxTasks) report_.tasks.push_back(task_name);
    if (task_started_) task_started_(task_name);
    return;
  }
  if (kind == "v2_runner_on_failed" || kind == "v2_runner_on_unreachable") {
    const json hosts = event.value("hosts", json::object());
    if (!hosts.is_object() || !report_.failed_task.empty()) return;
    // (One the playbook ignores looks the same: the runner forgets it when
    // the final stats count no failure.)
    for (const auto& [host, result] : hosts.items()) {
      report_.failed_task = task_name.empty() ? "?" : task_name;
      report_.failure = FailureOf(result);
      report_.unreachable = kind == "v2_runner_on_unreachable";
      return;
    }
    return;
  }
  if (kind == "v2_playbook_on_stats") {
    const json stats = event.value("stats", json::object());
    if (!stats.is_object()) return;
    for (const auto& [host, s] : stats.items()) {
      if (!s.is_object()) continue;
      PlaybookHostStats& h = report_.hosts[host];
      h.ok = IntAt(s, "ok");
      h.changed = IntAt(s, "changed");
      h.failed = IntAt(s, "failures");
      h.unreachable = IntAt(s, "unreachable");
      h.skipped = IntAt(s, "skipped");
    }
  }
}

}  // namespace orchestrator::infra
