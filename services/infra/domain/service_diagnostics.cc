#include "services/infra/domain/service_diagnostics.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <deque>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "services/common/containers/log_tail.h"
#include "services/common/pagination/page_budget.h"
#include "services/common/pagination/page_token.h"
#include "services/common/router/router.h"
#include "services/common/validation/request_bounds.h"
#include "services/infra/domain/error_grouping.h"

namespace orchestrator::infra {
namespace {

using google::protobuf::util::TimeUtil;

// What a message of past lines holds at most, well under gRPC's 4 MiB.
constexpr size_t kMaxMessageBytes = 256 << 10;
// A container its restart policy keeps bringing back is followed again
// this often at most.
constexpr int kMaxFollows = 100;
// The past lines a stream sends, at most (the rest of a tail is left out).
constexpr size_t kMaxPastBytes = 16 << 20;
// Lines of a crashed container's output its crash record shows.
constexpr size_t kCrashDetailLines = 20;
// Shorter secret values are not redacted: they would hide common text.
constexpr size_t kMinRedactedBytes = 4;

// The project's secret values replaced in what its service wrote.
class Redactor {
 public:
  explicit Redactor(const std::vector<std::string>& values) {
    for (const auto& v : values) {
      if (v.size() >= kMinRedactedBytes) replacements_.emplace_back(v, "[redacted]");
      // A service writes a line at a time: each line of a multi-line
      // secret (a PEM key) goes too.
      if (v.find('\n') == std::string::npos) continue;
      for (absl::string_view line : absl::StrSplit(v, '\n')) {
        line = absl::StripAsciiWhitespace(line);
        if (line.size() >= kMinRedactedBytes) replacements_.emplace_back(line, "[redacted]");
      }
    }
    // The longest first: a secret that contains another goes whole.
    std::sort(replacements_.begin(), replacements_.end(),
              [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  }
  std::string operator()(absl::string_view text) const {
    return replacements_.empty() ? std::string(text) : absl::StrReplaceAll(text, replacements_);
  }

 private:
  std::vector<std::pair<std::string, std::string>> replacements_;
};

absl::Time TimeOf(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(t));
}

// A request's since_time: INVALID_ARGUMENT outside what a Timestamp holds.
absl::StatusOr<absl::Time> SinceOf(bool set, const google::protobuf::Timestamp& t) {
  if (!set) return absl::InfinitePast();
  if (t.seconds() < TimeUtil::kTimestampMinSeconds ||
      t.seconds() > TimeUtil::kTimestampMaxSeconds || t.nanos() < 0 || t.nanos() > 999999999) {
    return absl::InvalidArgumentError(
        "since_time: not a valid time (0001-01-01 to 9999-12-31, nanos 0-999999999)");
  }
  return TimeOf(t);
}

google::protobuf::Timestamp TimestampOf(absl::Time t) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

// The second `t` is in: all the engine may tell of a line's time.
bool IsSet(const google::protobuf::Timestamp& t) { return t.seconds() != 0 || t.nanos() != 0; }

std::string Size(int64_t bytes) {
  const double mib = static_cast<double>(bytes) / (1 << 20);
  return mib < 1024 ? absl::StrFormat("%.1f MiB", mib) : absl::StrFormat("%.1f GiB", mib / 1024);
}

v1::HealthCheck Check(const std::string& name, bool passed, std::string message) {
  v1::HealthCheck check;
  check.set_name(name);
  check.set_passed(passed);
  check.set_message(std::move(message));
  return check;
}

// When a release's deploy failed or the platform took it down.
absl::Time FailedAt(const deploy::v1::Release& r) {
  if (IsSet(r.superseded_time())) return TimeOf(r.superseded_time());
  if (IsSet(r.live_time())) return TimeOf(r.live_time());
  return TimeOf(r.create_time());
}

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

bool RunsContainer(const deploy::v1::Release& r) {
  return !r.container_name().empty() && (r.status() == deploy::v1::RELEASE_STATUS_LIVE ||
                                         r.status() == deploy::v1::RELEASE_STATUS_DEPLOYING);
}

// A container's crashes: exits its restart policy restarted it after, and
// the exit it is stopped at when that was a failure.
std::optional<ErrorSighting> CrashOf(const containers::ContainerInfo& info, absl::Time now) {
  const bool failed_exit =
      !info.running && info.status != "created" && (info.exit_code != 0 || info.oom_killed);
  const int64_t count = info.restart_count + (failed_exit ? 1 : 0);
  if (count == 0) return std::nullopt;
  ErrorSighting crash;
  crash.kind = v1::ERROR_KIND_CRASH;
  if (info.oom_killed) {
    crash.message = "killed for using more memory than it may (out of memory)";
  } else if (failed_exit) {
    crash.message = absl::StrCat("exited with code ", info.exit_code);
  } else {
    crash.message = "exited and was restarted";
  }
  if (info.restart_count > 0) {
    absl::StrAppend(&crash.message, " (restarted ", info.restart_count, " times)");
  }
  crash.last_time = info.finished_at.value_or(info.started_at.value_or(now));
  crash.first_time = crash.last_time;
  crash.count = count;
  return crash;
}

}  // namespace

absl::Status ServiceDiagnostics::StreamLogs(const std::string& owner_id,
                                            const v1::GetServiceLogsRequest& request,
                                            const LogSink& send, const std::atomic<bool>* cancel) {
  const std::string& project_id = request.project_id();
  if (!request.service().empty() && request.service() != options_.service) {
    return absl::NotFoundError(absl::StrCat("service: project ", project_id, " has no service '",
                                            request.service(), "' (its service is '",
                                            options_.service, "')"));
  }
  auto live = releases_->Live(owner_id, project_id);
  if (!live.ok()) return live.status();
  if (!*live || (*live)->container_name().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "project ", project_id, " has nothing deployed: there is no live release to show logs of"));
  }
  const std::string container = (*live)->container_name();
  auto site = sites_->For((*live)->server_id());
  if (!site.ok()) return site.status();
  containers::ContainerEngine& engine = *site->engine;
  auto secrets = secrets_->Values(owner_id, project_id);
  if (!secrets.ok()) return secrets.status();
  const Redactor redact(*secrets);

  bool gone = false;  // the caller
  v1::GetServiceLogsResponse batch;
  size_t batch_bytes = 0;
  const auto flush = [&] {
    if (batch.lines_size() == 0 || gone) return !gone;
    FitToBounds(&batch);
    gone = !send(std::move(batch));
    batch.Clear();
    batch_bytes = 0;
    return !gone;
  };
  const auto take = [&](const containers::LogLine& line) {
    if (gone || (cancel != nullptr && cancel->load())) return false;
    common::v1::LogLine* out = batch.add_lines();
    if (line.time) *out->mutable_emit_time() = TimestampOf(*line.time);
    out->set_stream(line.source == containers::LogLine::Source::kStderr
                        ? common::v1::LOG_STREAM_STDERR
                        : common::v1::LOG_STREAM_STDOUT);
    out->set_source(options_.service);
    out->set_text(redact(line.text));
    batch_bytes += out->text().size() + 32;
    if (batch.lines_size() < options_.lines_per_message && batch_bytes < kMaxMessageBytes) {
      return true;
    }
    return flush();
  };
  const auto went_away = [](const absl::Status& s) {
    return s.code() == absl::StatusCode::kNotFound
               ? absl::AbortedError(
                     "the live release's container went away while its logs were read (a new "
                     "release replaced it): ask again")
               : s;
  };

  // The past lines: the last tail_lines of those written since a time.
  const int tail = request.tail_lines() > 0 ? request.tail_lines() : options_.default_tail_lines;
  auto since_or = SinceOf(request.has_since_time(), request.since_time());
  if (!since_or.ok()) return since_or.status();
  const absl::Time since = *since_or;
  auto from = containers::TailStart(engine, container, tail, since, cancel);
  if (!from.ok()) return went_away(from.status());
  containers::LogOptions past;
  past.since = *from;
  past.timestamps = true;
  std::deque<containers::LogLine> kept;
  size_t kept_bytes = 0;
  // The second the last past line was written in, and how many lines were
  // written in it: a follow from that second skips them.
  std::optional<absl::Time> last_second;
  int in_last_second = 0;
  const absl::Time asked = absl::Now();
  absl::Status read = engine.Logs(
      container, past,
      [&](const containers::LogLine& line) {
        if (cancel != nullptr && cancel->load()) return false;
        const absl::Time second = containers::SecondOf(line.time.value_or(asked));
        if (last_second == second) {
          ++in_last_second;
        } else {
          last_second = second;
          in_last_second = 1;
        }
        kept_bytes += line.text.size();
        kept.push_back(line);
        while (kept.size() > static_cast<size_t>(tail) ||
               (kept_bytes > kMaxPastBytes && kept.size() > 1)) {
          kept_bytes -= kept.front().text.size();
          kept.pop_front();
        }
        return true;
      },
      cancel);
  if (!read.ok()) return went_away(read);
  for (const auto& line : kept) {
    if (!take(line)) break;
  }
  if (!flush() || !request.follow()) return absl::OkStatus();
  if (cancel != nullptr && cancel->load()) return absl::CancelledError("the caller cancelled");

  // Then the new lines, sent whenever the engine pauses.
  containers::LogOptions next;
  next.since = last_second.value_or(std::max(*from, containers::SecondOf(asked)));
  next.follow = true;
  next.timestamps = true;
  next.on_pause = [&] { flush(); };
  int to_skip = last_second ? in_last_second : 0;
  const auto take_new = [&](const containers::LogLine& line) {
    if (to_skip > 0 && line.time && containers::SecondOf(*line.time) == next.since) {
      --to_skip;
      return true;
    }
    to_skip = 0;
    return take(line);
  };
  const absl::Time deadline = asked + options_.max_follow;
  for (int follows = 1;; ++follows) {
    next.follow_for = deadline - absl::Now();
    absl::Status followed = engine.Logs(container, next, take_new, cancel);
    if (!flush()) return absl::OkStatus();
    if (cancel != nullptr && cancel->load()) return absl::CancelledError("the caller cancelled");
    if (followed.code() == absl::StatusCode::kNotFound) return absl::OkStatus();
    if (!followed.ok() || absl::Now() >= deadline) return followed;
    // The follow ended with the container: replaced (stopped, or gone), or
    // restarted by its restart policy, whose new output is followed on.
    auto info = engine.InspectContainer(container);
    if (!info.ok()) {
      return info.status().code() == absl::StatusCode::kNotFound ? absl::OkStatus() : info.status();
    }
    if (!info->running || !info->started_at || follows >= kMaxFollows) return absl::OkStatus();
    next.since = *info->started_at;
    to_skip = 0;
  }
}

absl::StatusOr<v1::CheckServiceHealthResponse> ServiceDiagnostics::CheckHealth(
    const std::string& owner_id, const std::string& project_id) {
  v1::CheckServiceHealthResponse response;
  *response.mutable_check_time() = TimestampOf(absl::Now());
  auto live = releases_->Live(owner_id, project_id);
  if (!live.ok()) return live.status();
  if (!*live) {
    response.set_status(v1::HEALTH_STATUS_NOT_DEPLOYED);
    return response;
  }
  const deploy::v1::Release& release = **live;
  response.set_release_id(release.id());
  auto site = sites_->For(release.server_id());
  if (!site.ok()) return site.status();

  // Through the route, as the service's users reach it.
  const std::string host = router::HostOfUrl(release.url());
  const std::string path = release.health_path().empty() ? "/" : release.health_path();
  v1::HealthCheck route;
  if (host.empty()) {
    route = Check("route", false, "the live release has no URL to reach it at");
  } else {
    const absl::Time asked = absl::Now();
    auto answer = site->route->Get(host, path, options_.probe_timeout);
    const absl::Duration latency = absl::Now() - asked;
    const std::string what = absl::StrCat("GET ", path);
    if (!answer.ok()) {
      route = Check("route", false,
                    absl::StrCat(what, ": no answer (", answer.status().message(), ")"));
    } else {
      const bool passed = *answer >= 200 && *answer < 300;
      route = Check("route", passed,
                    absl::StrCat(what, " answered ", *answer, " in ",
                                 absl::ToInt64Milliseconds(latency), " ms"));
    }
    *route.mutable_latency() = TimeUtil::MicrosecondsToDuration(absl::ToInt64Microseconds(latency));
  }
  const bool serving = route.passed();
  *response.add_checks() = std::move(route);

  // The container: its state, its restarts, its memory.
  const std::string& name = release.container_name();
  absl::StatusOr<containers::ContainerInfo> info =
      name.empty() ? absl::StatusOr<containers::ContainerInfo>(
                         absl::NotFoundError("the live release has no container"))
                   : site->engine->InspectContainer(name);
  if (!info.ok()) {
    *response.add_checks() =
        Check("container", false,
              info.status().code() == absl::StatusCode::kNotFound
                  ? absl::StrCat("container ", name, " not found")
                  : absl::StrCat("the container engine did not answer: ", info.status().message()));
  } else {
    std::string state = info->status.empty() ? std::string("in an unknown state") : info->status;
    if (info->running && info->started_at) {
      absl::StrAppend(&state, " since ",
                      absl::FormatTime(absl::RFC3339_sec, *info->started_at, absl::UTCTimeZone()));
    } else if (!info->running) {
      absl::StrAppend(&state, " with exit code ", info->exit_code);
    }
    absl::StrAppend(&state, " (", name, ")");
    *response.add_checks() = Check("container", info->running, std::move(state));

    std::string restarts =
        info->restart_count == 0
            ? std::string("no restarts")
            : absl::StrCat("restarted ", info->restart_count, " times after exiting");
    if (info->oom_killed) absl::StrAppend(&restarts, "; killed for using too much memory");
    *response.add_checks() =
        Check("restarts", info->restart_count == 0 && !info->oom_killed, std::move(restarts));

    if (info->running) {
      auto memory = site->engine->MemoryUsage(name);
      if (!memory.ok()) {
        *response.add_checks() =
            Check("memory", false, absl::StrCat("not known: ", memory.status().message()));
      } else {
        const bool limited = memory->limit_bytes > 0;
        const bool passed = !limited || static_cast<double>(memory->usage_bytes) <=
                                            options_.memory_warning_share *
                                                static_cast<double>(memory->limit_bytes);
        std::string use = Size(memory->usage_bytes);
        if (limited) {
          absl::StrAppend(
              &use, " of ", Size(memory->limit_bytes),
              absl::StrFormat(" (%.0f%%)", 100.0 * memory->usage_bytes / memory->limit_bytes));
        }
        *response.add_checks() = Check("memory", passed, std::move(use));
      }
    }
  }

  const bool all_passed = std::all_of(response.checks().begin(), response.checks().end(),
                                      [](const v1::HealthCheck& c) { return c.passed(); });
  response.set_status(!serving     ? v1::HEALTH_STATUS_UNHEALTHY
                      : all_passed ? v1::HEALTH_STATUS_HEALTHY
                                   : v1::HEALTH_STATUS_DEGRADED);
  FitToBounds(&response);
  return response;
}

absl::StatusOr<v1::GetErrorHistoryResponse> ServiceDiagnostics::ErrorHistory(
    const std::string& owner_id, const v1::GetErrorHistoryRequest& request) {
  const std::string& project_id = request.project_id();
  auto since_or = SinceOf(request.has_since_time(), request.since_time());
  if (!since_or.ok()) return since_or.status();
  const absl::Time since = *since_or;
  const std::string filters = absl::StrCat(
      project_id, "|", request.has_since_time() ? absl::StrCat(absl::ToUnixMicros(since)) : "", "|",
      request.kind());
  auto page = ParsePageRequest(request.page_size(), request.page_token(), filters, 50, 500);
  if (!page.ok()) return page.status();
  int64_t after_micros = 0;
  if (!page->after.empty() &&
      (page->after.size() != 2 || !absl::SimpleAtoi(page->after[0], &after_micros))) {
    return absl::InvalidArgumentError("page_token: not one this server made");
  }
  const auto wanted = [&](v1::ErrorKind kind) {
    return request.kind() == v1::ERROR_KIND_UNSPECIFIED || request.kind() == kind;
  };

  auto releases = releases_->Latest(owner_id, project_id, options_.max_releases);
  if (!releases.ok()) return releases.status();
  auto secrets = secrets_->Values(owner_id, project_id);
  if (!secrets.ok()) return secrets.status();
  const Redactor redact(*secrets);
  const absl::Time now = absl::Now();
  // The engine may tell only the second a line was written in.
  const absl::Time since_second =
      since == absl::InfinitePast() ? since : containers::SecondOf(since);
  ErrorGroups groups(project_id, options_.service);

  if (wanted(v1::ERROR_KIND_HEALTH_CHECK)) {
    for (const auto& r : *releases) {
      if (r.failure_reason().empty() || FailedAt(r) < since) continue;
      ErrorSighting failed;
      failed.kind = v1::ERROR_KIND_HEALTH_CHECK;
      failed.release_id = r.id();
      failed.message = redact(FirstLine(r.failure_reason()));
      failed.detail = redact(r.failure_reason());
      failed.first_time = failed.last_time = FailedAt(r);
      groups.Add(std::move(failed));
    }
  }
  if (wanted(v1::ERROR_KIND_LOG) || wanted(v1::ERROR_KIND_CRASH)) {
    for (const auto& r : *releases) {
      if (!RunsContainer(r)) continue;
      auto site = sites_->For(r.server_id());
      if (!site.ok()) {
        // An earlier release's server gone or away: its output with it.
        if (r.status() == deploy::v1::RELEASE_STATUS_LIVE) return site.status();
        continue;
      }
      containers::ContainerEngine& engine = *site->engine;
      auto info = engine.InspectContainer(r.container_name());
      if (info.status().code() == absl::StatusCode::kNotFound) continue;
      if (!info.ok()) return info.status();
      std::deque<std::string> last_lines;
      ErrorLogScanner scanner([&](LoggedError e) {
        if (!wanted(v1::ERROR_KIND_LOG) || e.time < since_second) return;
        ErrorSighting logged;
        logged.kind = v1::ERROR_KIND_LOG;
        logged.release_id = r.id();
        logged.message = redact(e.message);
        logged.detail = redact(e.detail);
        logged.first_time = logged.last_time = e.time;
        groups.Add(std::move(logged));
      });
      auto from = containers::TailStart(engine, r.container_name(), options_.max_scanned_lines,
                                        since, nullptr);
      if (from.status().code() == absl::StatusCode::kNotFound) continue;
      if (!from.ok()) return from.status();
      containers::LogOptions options;
      options.since = *from;
      options.timestamps = true;
      absl::Status read = engine.Logs(
          r.container_name(), options,
          [&](const containers::LogLine& line) {
            const absl::Time written = line.time.value_or(now);
            // Redacted before anything normalises or cuts it: a secret
            // must still match.
            const std::string text = redact(line.text);
            scanner.Add(text, written);
            last_lines.push_back(text.substr(0, 1024));
            if (last_lines.size() > kCrashDetailLines) last_lines.pop_front();
            return true;
          },
          nullptr);
      if (read.code() == absl::StatusCode::kNotFound) continue;
      if (!read.ok()) return read;
      scanner.Finish();
      if (!wanted(v1::ERROR_KIND_CRASH)) continue;
      if (auto crash = CrashOf(*info, now); crash && crash->last_time >= since) {
        crash->release_id = r.id();
        crash->detail = redact(absl::StrJoin(last_lines, "\n"));
        groups.Add(*std::move(crash));
      }
    }
  }

  v1::GetErrorHistoryResponse response;
  std::vector<v1::ErrorRecord> records = groups.Records();
  auto it = records.begin();
  if (!page->after.empty()) {
    const std::string& after_id = page->after[1];
    it = std::find_if(records.begin(), records.end(), [&](const v1::ErrorRecord& r) {
      const int64_t last = TimeUtil::TimestampToMicroseconds(r.last_seen_time());
      return last < after_micros || (last == after_micros && r.id() > after_id);
    });
  }
  PageBudget budget;
  for (; it != records.end() && response.errors_size() < page->page_size; ++it) {
    FitToBounds(&*it);
    if (!budget.Take(*it)) break;
    *response.add_errors() = std::move(*it);
  }
  if (it != records.end() && response.errors_size() > 0) {
    const v1::ErrorRecord& last = response.errors(response.errors_size() - 1);
    response.set_next_page_token(MakePageToken(
        filters,
        {absl::StrCat(TimeUtil::TimestampToMicroseconds(last.last_seen_time())), last.id()}));
  }
  return response;
}

}  // namespace orchestrator::infra
