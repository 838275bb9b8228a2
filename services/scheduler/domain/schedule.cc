#include "services/scheduler/domain/schedule.h"

#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"

namespace orchestrator::scheduler {
namespace {

constexpr absl::Duration kMaxInterval = absl::Hours(24 * 31);
// How far NextAfter looks for a cron match (a little over four years: a
// "29 Feb" expression matches once in that).
constexpr int kSearchDays = 366 * 4 + 2;
// Due times a count or search walks one by one before giving up.
constexpr int64_t kMaxWalk = 600000;

absl::Status Bad(const std::string& field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

// One cron field into `bits` (values lo..hi); false when malformed.
template <size_t N>
bool ParseField(absl::string_view text, int lo, int hi, std::bitset<N>& bits, bool& restricted) {
  restricted = text != "*";
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    if (part.empty()) return false;
    int step = 1;
    if (size_t slash = part.find('/'); slash != absl::string_view::npos) {
      if (!absl::SimpleAtoi(part.substr(slash + 1), &step) || step < 1 || step > hi) return false;
      part = part.substr(0, slash);
    }
    int first = lo;
    int last = hi;
    if (part != "*") {
      if (size_t dash = part.find('-'); dash != absl::string_view::npos) {
        if (!absl::SimpleAtoi(part.substr(0, dash), &first) ||
            !absl::SimpleAtoi(part.substr(dash + 1), &last)) {
          return false;
        }
      } else {
        if (!absl::SimpleAtoi(part, &first)) return false;
        // "a/n" means from a to the end, as in Vixie cron.
        last = step > 1 ? hi : first;
      }
    }
    if (first < lo || last > hi || first > last) return false;
    for (int v = first; v <= last; v += step) bits.set(static_cast<size_t>(v));
  }
  return true;
}

int Weekday(const absl::CivilDay& d) {
  switch (absl::GetWeekday(d)) {
    case absl::Weekday::sunday:
      return 0;
    case absl::Weekday::monday:
      return 1;
    case absl::Weekday::tuesday:
      return 2;
    case absl::Weekday::wednesday:
      return 3;
    case absl::Weekday::thursday:
      return 4;
    case absl::Weekday::friday:
      return 5;
    case absl::Weekday::saturday:
      return 6;
  }
  return 0;
}

}  // namespace

absl::StatusOr<Schedule> Schedule::Every(absl::Duration interval, const std::string& field) {
  if (interval < absl::Seconds(1) || interval > kMaxInterval) {
    return Bad(field, "an interval from 1s to 744h (31 days)");
  }
  if (interval % absl::Seconds(1) != absl::ZeroDuration()) {
    return Bad(field, "an interval of whole seconds");
  }
  Schedule s;
  s.interval_ = interval;
  return s;
}

absl::StatusOr<Schedule> Schedule::Cron(const std::string& expression, const std::string& field) {
  std::vector<absl::string_view> fields =
      absl::StrSplit(expression, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (fields.size() != 5) {
    return Bad(field,
               "five fields (minute hour day-of-month month day-of-week), e.g. \"0 3 * * *\"");
  }
  Schedule s;
  s.is_cron_ = true;
  s.cron_ = absl::StrJoin(fields, " ");
  bool unused = false;
  std::bitset<8> weekdays;
  if (!ParseField(fields[0], 0, 59, s.minutes_, unused)) return Bad(field, "bad minute field");
  if (!ParseField(fields[1], 0, 23, s.hours_, unused)) return Bad(field, "bad hour field");
  if (!ParseField(fields[2], 1, 31, s.days_, s.days_restricted_)) {
    return Bad(field, "bad day-of-month field");
  }
  if (!ParseField(fields[3], 1, 12, s.months_, unused)) return Bad(field, "bad month field");
  if (!ParseField(fields[4], 0, 7, weekdays, s.weekdays_restricted_)) {
    return Bad(field, "bad day-of-week field");
  }
  for (size_t d = 0; d < 7; ++d) s.weekdays_[d] = weekdays[d];
  if (weekdays[7]) s.weekdays_.set(0);
  // Any four years hold every date (29 February too) and weekday.
  if (s.NextAfter(absl::FromUnixSeconds(0)) == absl::InfiniteFuture()) {
    return Bad(field, "never due (no such date, e.g. 31 February)");
  }
  return s;
}

std::string Schedule::Key() const {
  if (is_cron_) return absl::StrCat("cron ", cron_);
  return absl::StrCat("every ", absl::ToInt64Seconds(interval_), "s");
}

bool Schedule::Matches(const absl::CivilMinute& m) const {
  if (!minutes_[static_cast<size_t>(m.minute())] || !hours_[static_cast<size_t>(m.hour())] ||
      !months_[static_cast<size_t>(m.month())]) {
    return false;
  }
  const bool day = days_[static_cast<size_t>(m.day())];
  const bool weekday = weekdays_[static_cast<size_t>(Weekday(absl::CivilDay(m)))];
  if (days_restricted_ && weekdays_restricted_) return day || weekday;
  return day && weekday;
}

absl::Time Schedule::NextAfter(absl::Time t) const {
  if (t == absl::InfiniteFuture()) return t;
  if (!is_cron_) {
    const int64_t step = absl::ToInt64Seconds(interval_);
    const int64_t s = absl::ToUnixSeconds(t);  // floors
    return absl::FromUnixSeconds((s / step + 1) * step - (s < 0 && s % step != 0 ? step : 0));
  }
  absl::CivilMinute m = absl::ToCivilMinute(t, absl::UTCTimeZone()) + 1;
  const absl::CivilDay last_day = absl::CivilDay(m) + kSearchDays;
  while (absl::CivilDay(m) <= last_day) {
    if (!months_[static_cast<size_t>(m.month())]) {
      m = absl::CivilMinute(absl::CivilMonth(m) + 1);
      continue;
    }
    const bool day = days_[static_cast<size_t>(m.day())];
    const bool weekday = weekdays_[static_cast<size_t>(Weekday(absl::CivilDay(m)))];
    const bool day_ok = days_restricted_ && weekdays_restricted_ ? day || weekday : day && weekday;
    if (!day_ok) {
      m = absl::CivilMinute(absl::CivilDay(m) + 1);
      continue;
    }
    if (!hours_[static_cast<size_t>(m.hour())]) {
      m = absl::CivilMinute(absl::CivilHour(m) + 1);
      continue;
    }
    if (!minutes_[static_cast<size_t>(m.minute())]) {
      m += 1;
      continue;
    }
    return absl::FromCivil(m, absl::UTCTimeZone());
  }
  return absl::InfiniteFuture();
}

absl::Time Schedule::LatestAtOrBefore(absl::Time t, absl::Time not_before) const {
  if (t < not_before) return absl::InfinitePast();
  if (!is_cron_) {
    const absl::Time latest = NextAfter(t) - interval_;
    return latest >= not_before ? latest : absl::InfinitePast();
  }
  absl::Time latest = absl::InfinitePast();
  absl::Time due = NextAfter(not_before - absl::Nanoseconds(1));
  for (int64_t walked = 0; due <= t && walked < kMaxWalk; ++walked) {
    latest = due;
    due = NextAfter(due);
  }
  return latest;
}

int64_t Schedule::CountIn(absl::Time from, absl::Time to) const {
  if (to <= from) return 0;
  if (!is_cron_) {
    const absl::Time first = NextAfter(from - absl::Nanoseconds(1));
    if (first >= to) return 0;
    return (to - first - absl::Nanoseconds(1)) / interval_ + 1;
  }
  int64_t count = 0;
  for (absl::Time due = NextAfter(from - absl::Nanoseconds(1)); due < to && count < kMaxWalk;
       due = NextAfter(due)) {
    ++count;
  }
  return count;
}

}  // namespace orchestrator::scheduler
