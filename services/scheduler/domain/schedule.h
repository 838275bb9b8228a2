#pragma once

#include <bitset>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace orchestrator::scheduler {

// When a task is due: a fixed interval (due at every multiple of it since
// the Unix epoch, so every replica computes the same times) or a cron
// expression, both in UTC. Due times are a pure function of the schedule:
// "this task at this time" names one run across any number of replicas.
class Schedule {
 public:
  // An interval of whole seconds, 1 s to 31 days; INVALID_ARGUMENT naming
  // `field` otherwise.
  static absl::StatusOr<Schedule> Every(absl::Duration interval, const std::string& field);
  // Five fields: minute (0-59) hour (0-23) day-of-month (1-31) month (1-12)
  // day-of-week (0-7, 0 and 7 are Sunday); each "*", a number, a range
  // "a-b", a step "*/n" or "a-b/n", or a comma list of those. As in cron,
  // when both day fields are restricted a day matching either is due.
  // INVALID_ARGUMENT naming `field` and the bad part otherwise.
  static absl::StatusOr<Schedule> Cron(const std::string& expression, const std::string& field);

  bool is_cron() const { return is_cron_; }
  absl::Duration interval() const { return interval_; }
  const std::string& cron() const { return cron_; }
  // "every 60s" or "cron 0 3 * * *": what it is, stably (kept with the
  // next due time, to notice a changed schedule).
  std::string Key() const;

  // The first due time strictly after `t`; InfiniteFuture when a cron
  // expression can never match (e.g. "0 0 31 2 *").
  absl::Time NextAfter(absl::Time t) const;
  // The latest due time at or before `t`, searching back no further than
  // `not_before`; InfinitePast when there is none in [not_before, t].
  absl::Time LatestAtOrBefore(absl::Time t, absl::Time not_before) const;
  // How many due times lie in [from, to).
  int64_t CountIn(absl::Time from, absl::Time to) const;

 private:
  Schedule() = default;
  bool Matches(const absl::CivilMinute& m) const;

  bool is_cron_ = false;
  absl::Duration interval_ = absl::ZeroDuration();
  std::string cron_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1-31
  std::bitset<13> months_;   // 1-12
  std::bitset<7> weekdays_;  // 0 = Sunday
  bool days_restricted_ = false;
  bool weekdays_restricted_ = false;
};

}  // namespace orchestrator::scheduler
