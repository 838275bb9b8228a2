#include "services/scheduler/domain/schedule.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace orchestrator::scheduler {
namespace {

absl::Time At(const std::string& rfc3339) {
  absl::Time t;
  std::string err;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, rfc3339, &t, &err)) << err;
  return t;
}

std::string Format(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ %a", t, absl::UTCTimeZone());
}

Schedule Cron(const std::string& e) {
  auto s = Schedule::Cron(e, "cron");
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

TEST(CronTest, ADailyExpressionIsDueOnceADayAtItsTime) {
  Schedule s = Cron("0 3 * * *");
  EXPECT_EQ(Format(s.NextAfter(At("2026-11-28T02:59:59Z"))), "2026-11-28T03:00:00Z Sat");
  // Strictly after: the due time itself gives the next day's.
  EXPECT_EQ(Format(s.NextAfter(At("2026-11-28T03:00:00Z"))), "2026-11-29T03:00:00Z Sun");
  EXPECT_EQ(s.Key(), "cron 0 3 * * *");
}

TEST(CronTest, StepsRangesAndListsSelectTheirValues) {
  Schedule s = Cron("*/15 9-10 * * *");
  absl::Time t = At("2026-11-28T08:50:00Z");
  std::vector<std::string> due;
  for (int i = 0; i < 9; ++i) due.push_back(Format(t = s.NextAfter(t)).substr(11, 5));
  EXPECT_EQ(due, (std::vector<std::string>{"09:00", "09:15", "09:30", "09:45", "10:00", "10:15",
                                           "10:30", "10:45", "09:00"}));
  Schedule list = Cron("5,35 0 1 1,7 *");
  EXPECT_EQ(Format(list.NextAfter(At("2026-11-28T00:00:00Z"))), "2027-01-01T00:05:00Z Fri");
}

TEST(CronTest, RestrictedDayFieldsMatchEitherAsInCron) {
  // The 13th, or any Friday.
  Schedule s = Cron("0 0 13 * 5");
  EXPECT_EQ(Format(s.NextAfter(At("2026-11-28T00:00:00Z"))), "2026-12-04T00:00:00Z Fri");
  EXPECT_EQ(Format(s.NextAfter(At("2026-12-11T00:00:00Z"))), "2026-12-13T00:00:00Z Sun");
  // Only weekdays (Sunday is 0 or 7).
  Schedule sundays = Cron("30 12 * * 7");
  EXPECT_EQ(Format(sundays.NextAfter(At("2026-11-28T00:00:00Z"))), "2026-11-29T12:30:00Z Sun");
}

TEST(CronTest, ARareDateIsFoundAndAnImpossibleOneIsRefused) {
  EXPECT_EQ(Format(Cron("0 0 29 2 *").NextAfter(At("2026-11-28T00:00:00Z"))),
            "2028-02-29T00:00:00Z Tue");
  auto never = Schedule::Cron("0 0 31 2 *", "cron");
  ASSERT_FALSE(never.ok());
  EXPECT_EQ(never.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(never.status().message(), "never due")) << never.status();
}

TEST(CronTest, MalformedExpressionsNameTheFieldAndThePart) {
  for (const char* bad : {"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *",
                          "* * * 13 *", "* * * * 8", "*/0 * * * *", "5-1 * * * *", "a * * * *",
                          "1,,2 * * * *", "-1 * * * *", "*/x * * * *"}) {
    auto s = Schedule::Cron(bad, "cron");
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(absl::StartsWith(s.status().message(), "cron: ")) << s.status();
  }
}

TEST(IntervalTest, DueTimesAreMultiplesOfTheIntervalSinceTheEpoch) {
  auto s = Schedule::Every(absl::Seconds(10), "interval");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->NextAfter(At("2026-11-28T10:00:03.5Z")), At("2026-11-28T10:00:10Z"));
  EXPECT_EQ(s->NextAfter(At("2026-11-28T10:00:10Z")), At("2026-11-28T10:00:20Z"));
  EXPECT_EQ(s->Key(), "every 10s");
}

TEST(IntervalTest, OutOfRangeOrFractionalIntervalsAreRefused) {
  for (absl::Duration bad : {absl::ZeroDuration(), absl::Milliseconds(500), absl::Seconds(-5),
                             absl::Milliseconds(1500), absl::Hours(24 * 32)}) {
    auto s = Schedule::Every(bad, "interval");
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_TRUE(absl::StartsWith(s.status().message(), "interval: ")) << s.status();
  }
}

TEST(ScheduleTest, TheLatestDueTimeAndTheMissedCountAfterAnOutage) {
  auto every = Schedule::Every(absl::Seconds(5), "interval");
  ASSERT_TRUE(every.ok());
  // Due at :00 and not run until :23: :00, :05, :10, :15 and :20 came due;
  // the latest (:20) runs, the four before it were missed.
  const absl::Time first = At("2026-11-28T10:00:00Z");
  const absl::Time now = At("2026-11-28T10:00:23Z");
  const absl::Time latest = every->LatestAtOrBefore(now, first);
  EXPECT_EQ(latest, At("2026-11-28T10:00:20Z"));
  EXPECT_EQ(every->CountIn(first, latest), 4);
  EXPECT_EQ(every->CountIn(first, first), 0);
  EXPECT_EQ(every->LatestAtOrBefore(first - absl::Seconds(1), first), absl::InfinitePast());

  Schedule hourly = Cron("0 * * * *");
  const absl::Time due = At("2026-11-28T10:00:00Z");
  EXPECT_EQ(hourly.LatestAtOrBefore(At("2026-11-28T13:30:00Z"), due), At("2026-11-28T13:00:00Z"));
  EXPECT_EQ(hourly.CountIn(due, At("2026-11-28T13:00:00Z")), 3);
}

}  // namespace
}  // namespace orchestrator::scheduler
