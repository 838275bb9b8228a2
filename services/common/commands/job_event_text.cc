#include "services/common/commands/job_event_text.h"

#include "absl/strings/str_cat.h"
#include "services/common/commands/format.h"

namespace orchestrator::commands {
namespace {

std::string Label(jobs::v1::JobState s) {
  return EnumLabel(jobs::v1::JobState_descriptor()->FindValueByNumber(s));
}

}  // namespace

std::string EventDetail(const jobs::v1::JobEvent& e, absl::Time now) {
  switch (e.payload_case()) {
    case jobs::v1::JobEvent::kStateChanged: {
      const auto& c = e.state_changed();
      std::string out = c.from_state() == jobs::v1::JOB_STATE_UNSPECIFIED
                            ? Label(c.to_state())  // the job was created
                            : absl::StrCat(Label(c.from_state()), " → ", Label(c.to_state()));
      if (c.to_state() == jobs::v1::JOB_STATE_RUNNING)
        absl::StrAppend(&out, " (attempt ", c.attempt(), ")");
      if (c.has_error()) absl::StrAppend(&out, "  ", FormatMessage(c.error(), now, true));
      if (c.to_state() == jobs::v1::JOB_STATE_QUEUED && c.has_run_after()) {
        absl::StrAppend(&out, "  retry ",
                        AgoText(absl::FromUnixSeconds(c.run_after().seconds()), now));
      }
      if (!c.reason().empty() && !c.has_error()) absl::StrAppend(&out, "  ", c.reason());
      return out;
    }
    case jobs::v1::JobEvent::kProgress:
      return absl::StrCat(e.progress().percent(), "%",
                          e.progress().message().empty() ? "" : "  " + e.progress().message());
    case jobs::v1::JobEvent::kLogLine: {
      const auto& line = e.log_line();
      std::string from = line.source();
      if (from.empty() && line.stream() != common::v1::LOG_STREAM_UNSPECIFIED) {
        from = EnumLabel(common::v1::LogStream_descriptor()->FindValueByNumber(line.stream()));
      }
      return from.empty() ? line.text() : absl::StrCat(from, ": ", line.text());
    }
    case jobs::v1::JobEvent::kResult:
      return FormatMessage(e.result().result(), now, true);
    case jobs::v1::JobEvent::kCancelRequested:
      return absl::StrCat("cancel requested", e.cancel_requested().reason().empty()
                                                  ? ""
                                                  : ": " + e.cancel_requested().reason());
    default:
      return "";
  }
}

std::string EventLine(const jobs::v1::JobEvent& e, absl::Time now) {
  const std::string type =
      EnumLabel(jobs::v1::JobEventType_descriptor()->FindValueByNumber(e.type()));
  return absl::StrCat(ClockText(absl::FromUnixSeconds(e.create_time().seconds())), "  #",
                      e.sequence(), "  ", type, "  ", EventDetail(e, now));
}

}  // namespace orchestrator::commands
