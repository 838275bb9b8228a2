#include "services/common/containers/log_tail.h"

#include <algorithm>
#include <deque>
#include <optional>

namespace orchestrator::containers {
namespace {
// What the first read asks the engine for at most.
constexpr int kMaxProbedLines = 50000;
}  // namespace

absl::StatusOr<absl::Time> TailStart(ContainerEngine& engine, const std::string& container,
                                     int lines, absl::Time since, const std::atomic<bool>* cancel) {
  LogOptions probe;
  probe.tail_lines = std::min(2 * lines + 16, kMaxProbedLines);
  probe.since = since;
  probe.timestamps = true;
  int count = 0;
  std::optional<absl::Time> earliest;
  absl::Status read = engine.Logs(
      container, probe,
      [&](const LogLine& line) {
        ++count;
        if (line.time && (!earliest || *line.time < *earliest)) earliest = line.time;
        return true;
      },
      cancel);
  if (!read.ok()) return read;
  // Fewer than asked: everything since `since` is that short.
  if (count < probe.tail_lines || !earliest) return since;
  return std::max(since, SecondOf(*earliest));
}

absl::StatusOr<std::vector<std::string>> LastLogLines(ContainerEngine& engine,
                                                      const std::string& container, int lines,
                                                      size_t max_line_bytes) {
  auto from = TailStart(engine, container, lines, absl::InfinitePast(), nullptr);
  if (!from.ok()) return from.status();
  LogOptions options;
  options.since = *from;
  std::deque<std::string> kept;
  absl::Status read = engine.Logs(
      container, options,
      [&](const LogLine& line) {
        kept.push_back(line.text.substr(0, max_line_bytes));
        if (static_cast<int>(kept.size()) > lines) kept.pop_front();
        return true;
      },
      nullptr);
  if (!read.ok()) return read;
  return std::vector<std::string>(kept.begin(), kept.end());
}

}  // namespace orchestrator::containers
